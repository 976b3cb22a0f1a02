-- report_window: the report's window, [start, end): the getvariable('days') UTC days up to the last
-- day with billing in cost_daily (end = that day + 1), and the month the month-to-date section shows
-- (the latest cost_trend_monthly partition). NULLs when the tables are empty.
-- Parameters: getvariable('days') (INTEGER).
-- By hand in the duckdb CLI on finops.duckdb: SET VARIABLE days = 30; .read sql/report/report_window.sql
SELECT
    CAST(max(usage_date) + 1 - CAST(getvariable('days') AS INTEGER) AS DATE) AS start,
    CAST(max(usage_date) + 1 AS DATE) AS "end",
    (SELECT max(usage_date) FROM cost_trend_monthly) AS month
FROM cost_daily
