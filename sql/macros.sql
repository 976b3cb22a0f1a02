-- Helper macros created in the catalog (and in the marts' in-memory connection).
-- Periods are start-inclusive, end-exclusive; days are UTC.

-- First day of the month a date falls in.
CREATE OR REPLACE MACRO month_start(d) AS CAST(date_trunc('month', d) AS DATE);

-- Number of days in the month a date falls in (28-31).
CREATE OR REPLACE MACRO days_in_month(d) AS day(last_day(d));

-- cost_daily rows of the UTC days in [start_day, end_day).
CREATE OR REPLACE MACRO cost_between(start_day, end_day) AS TABLE
    SELECT * FROM cost_daily
    WHERE usage_date >= CAST(start_day AS DATE) AND usage_date < CAST(end_day AS DATE);

-- metrics_hourly rows of the UTC hours in [start_day, end_day).
CREATE OR REPLACE MACRO metrics_between(start_day, end_day) AS TABLE
    SELECT * FROM metrics_hourly
    WHERE usage_date >= CAST(start_day AS DATE) AND usage_date < CAST(end_day AS DATE);
