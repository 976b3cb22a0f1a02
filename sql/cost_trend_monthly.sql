-- cost_trend_monthly: predicted vs actual per month x provider x service (x matched resource)
-- x billing currency, for months starting in [start, end); usage_date is the month's first day.
-- Parameters: getvariable('start'), getvariable('end') (DATE, first days of months, end
--             exclusive), getvariable('tolerance') (fraction: within it the status is on_track).
-- Built on the cost_trend_daily mart (the same matching of billing rows to predictions).
-- A month is measured as of the provider's last day with billing in it (days_elapsed);
-- a complete month has days_elapsed = days_in_month and its projection equals its actual.
WITH days AS (
    SELECT * FROM cost_trend_daily
    WHERE usage_date >= getvariable('start') AND usage_date < getvariable('end')
),
as_of AS (
    SELECT provider, date_trunc('month', usage_date) AS month, max(usage_date) AS as_of_date
    FROM days GROUP BY ALL
),
totals AS (
    SELECT
        CAST(date_trunc('month', d.usage_date) AS DATE) AS usage_date,
        d.provider, d.service_name, d.match_value, d.billing_currency, a.as_of_date,
        min(d.resource_id) AS resource_id,
        sum(d.actual_cost) AS actual_cost,
        sum(d.effective_cost) AS effective_cost,
        max(d.predicted_monthly_cost) AS predicted_cost,
        sum(d.forecast_cost) AS forecast_cost
    FROM days AS d
    JOIN as_of AS a ON a.provider = d.provider AND a.month = date_trunc('month', d.usage_date)
    GROUP BY 1, d.provider, d.service_name, d.match_value, d.billing_currency, a.as_of_date
),
monthly AS (
    SELECT *,
        CAST(dayofmonth(last_day(as_of_date)) AS BIGINT) AS days_in_month,
        CAST(dayofmonth(as_of_date) AS BIGINT) AS days_elapsed,
        CAST(predicted_cost * dayofmonth(as_of_date) / dayofmonth(last_day(as_of_date))
             AS DECIMAL(38, 10)) AS prorated_predicted_cost,
        CAST(actual_cost * dayofmonth(last_day(as_of_date)) / dayofmonth(as_of_date)
             AS DECIMAL(38, 10)) AS projected_month_end_cost
    FROM totals
)
SELECT
    usage_date, provider, service_name, match_value, resource_id, billing_currency, as_of_date,
    days_in_month, days_elapsed, actual_cost, effective_cost, predicted_cost, prorated_predicted_cost,
    forecast_cost,
    actual_cost - prorated_predicted_cost AS mtd_variance,
    projected_month_end_cost,
    projected_month_end_cost - predicted_cost AS variance,
    CAST((projected_month_end_cost - predicted_cost) / nullif(predicted_cost, 0) AS DOUBLE) AS variance_pct,
    CASE WHEN predicted_cost IS NULL OR predicted_cost = 0 THEN 'no_prediction'
         WHEN (projected_month_end_cost - predicted_cost) / predicted_cost > getvariable('tolerance') THEN 'over'
         WHEN (projected_month_end_cost - predicted_cost) / predicted_cost < -getvariable('tolerance') THEN 'under'
         ELSE 'on_track' END AS status
FROM monthly
ORDER BY usage_date, provider, service_name, match_value NULLS FIRST, billing_currency
