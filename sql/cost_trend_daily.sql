-- cost_trend_daily: predicted vs actual per UTC day x provider x service (x matched resource)
-- x billing currency, for days in [start, end).
-- Parameters: getvariable('start'), getvariable('end') (DATE, end exclusive),
--             getvariable('tag_key') (billing tag whose value matches a prediction),
--             getvariable('tolerance') (fraction, e.g. 0.1: within it the status is on_track).
-- Actual = cost_daily.billed_cost (every charge category), so each cost_daily row lands in
-- exactly one trend row. A billing row is matched to a resource-level prediction when its tag
-- value (or its resource_id, for CSV predictions) equals the prediction's match_value in that
-- month; all other rows roll up to the service (match_value NULL). Resource-level predictions
-- of a service whose billing that month meets no prediction key (Cost Explorer rows carry no
-- tags) roll up to the service too, rather than showing 0 actual next to unpredicted spend.
-- Predicted daily = predicted monthly / days in month; month-to-date prediction is prorated
-- by day of month; the run-rate projection is MTD actual / day of month x days in month.
WITH bounds AS (
    SELECT CAST(date_trunc('month', getvariable('start')) AS DATE) AS read_start,
           CAST(getvariable('end') AS DATE) AS read_end
),
predictions AS (
    SELECT provider, month,
           coalesce(service_name, 'unmapped:' || coalesce(resource_type, 'unknown')) AS service_name,
           match_value, billing_currency,
           sum(predicted_monthly_cost) AS predicted_monthly_cost
    FROM cost_predictions, bounds
    WHERE month >= date_trunc('month', read_start) AND month < read_end
    GROUP BY ALL
),
prediction_keys AS (
    SELECT DISTINCT provider, month, match_value FROM predictions WHERE match_value IS NOT NULL
),
billed AS (
    SELECT b.usage_date, b.provider, b.service_name, b.billing_currency, b.resource_id,
           b.billed_cost, b.effective_cost,
           coalesce(by_tag.match_value, by_id.match_value) AS match_value
    FROM cost_daily AS b
    CROSS JOIN bounds
    LEFT JOIN prediction_keys AS by_tag
      ON by_tag.provider = b.provider AND by_tag.month = date_trunc('month', b.usage_date)
     AND by_tag.match_value = b.tags[getvariable('tag_key')]
    LEFT JOIN prediction_keys AS by_id
      ON by_id.provider = b.provider AND by_id.month = date_trunc('month', b.usage_date)
     AND by_id.match_value = b.resource_id
    WHERE b.usage_date >= read_start AND b.usage_date < read_end
),
actual AS (
    SELECT usage_date, provider, service_name, match_value, billing_currency,
           sum(billed_cost) AS actual_cost, sum(effective_cost) AS effective_cost,
           CASE WHEN match_value IS NOT NULL THEN min(resource_id) END AS resource_id
    FROM billed
    GROUP BY usage_date, provider, service_name, match_value, billing_currency
),
billed_days AS (  -- predictions are spread only over days the provider's billing has arrived
    SELECT DISTINCT usage_date, provider FROM billed
),
matchable AS (  -- services whose billing this month carries keys that meet a prediction
    SELECT DISTINCT provider, date_trunc('month', usage_date) AS month, service_name
    FROM billed WHERE match_value IS NOT NULL
),
resolved_predictions AS (  -- elsewhere (e.g. Cost Explorer rows carry no tags) resource
    SELECT p.provider, p.month, p.service_name,  -- predictions count at service level
           CASE WHEN m.service_name IS NOT NULL THEN p.match_value END AS match_value,
           p.billing_currency, sum(p.predicted_monthly_cost) AS predicted_monthly_cost
    FROM predictions AS p
    LEFT JOIN matchable AS m
      ON m.provider = p.provider AND m.month = p.month AND m.service_name = p.service_name
    GROUP BY ALL
),
predicted AS (
    SELECT d.usage_date, p.provider, p.service_name, p.match_value, p.billing_currency,
           p.predicted_monthly_cost
    FROM billed_days AS d
    JOIN resolved_predictions AS p ON p.provider = d.provider AND p.month = date_trunc('month', d.usage_date)
),
forecast_made AS (  -- per day: the latest provider forecast made on or before it that covers it
    SELECT d.usage_date, f.provider, f.service_name, f.billing_currency, f.usage_date AS made_on,
           f.mean_cost / (f.period_end - f.period_start) AS daily_cost
    FROM billed_days AS d
    JOIN cost_forecast AS f
      ON f.provider = d.provider AND f.service_name IS NOT NULL
     AND f.period_start <= d.usage_date AND f.period_end > d.usage_date AND f.usage_date <= d.usage_date
    QUALIFY f.usage_date = max(f.usage_date) OVER (
        PARTITION BY d.usage_date, f.provider, f.service_name, f.billing_currency)
),
forecast AS (
    SELECT usage_date, provider, service_name, billing_currency, sum(daily_cost) AS forecast_cost
    FROM forecast_made GROUP BY ALL
),
grid AS (
    SELECT usage_date, provider, service_name, match_value, billing_currency FROM actual
    UNION
    SELECT usage_date, provider, service_name, match_value, billing_currency FROM predicted
),
joined AS (
    SELECT
        g.usage_date, g.provider, g.service_name, g.match_value, a.resource_id, g.billing_currency,
        coalesce(a.actual_cost, 0) AS actual_cost,
        coalesce(a.effective_cost, 0) AS effective_cost,
        p.predicted_monthly_cost,
        CAST(dayofmonth(last_day(g.usage_date)) AS INTEGER) AS days_in_month,
        CAST(dayofmonth(g.usage_date) AS INTEGER) AS day_of_month,
        CASE WHEN g.match_value IS NULL THEN fc.forecast_cost END AS forecast_cost
    FROM grid AS g
    LEFT JOIN actual AS a
      ON a.usage_date = g.usage_date AND a.provider = g.provider AND a.service_name = g.service_name
     AND a.match_value IS NOT DISTINCT FROM g.match_value AND a.billing_currency = g.billing_currency
    LEFT JOIN predicted AS p
      ON p.usage_date = g.usage_date AND p.provider = g.provider AND p.service_name = g.service_name
     AND p.match_value IS NOT DISTINCT FROM g.match_value AND p.billing_currency = g.billing_currency
    LEFT JOIN forecast AS fc
      ON fc.usage_date = g.usage_date AND fc.provider = g.provider AND fc.service_name = g.service_name
     AND fc.billing_currency = g.billing_currency
),
measured AS (
    SELECT *,
        CAST(predicted_monthly_cost / days_in_month AS DECIMAL(38, 10)) AS predicted_cost,
        sum(actual_cost) OVER (
            PARTITION BY provider, service_name, match_value, billing_currency, date_trunc('month', usage_date)
            ORDER BY usage_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS mtd_actual_cost,
        CAST(predicted_monthly_cost * day_of_month / days_in_month AS DECIMAL(38, 10)) AS mtd_predicted_cost
    FROM joined
)
SELECT
    usage_date, provider, service_name, match_value, resource_id, billing_currency,
    actual_cost, effective_cost, predicted_cost,
    CAST(forecast_cost AS DECIMAL(38, 10)) AS forecast_cost,
    actual_cost - predicted_cost AS variance,
    CAST((actual_cost - predicted_cost) / nullif(predicted_cost, 0) AS DOUBLE) AS variance_pct,
    predicted_monthly_cost,
    mtd_actual_cost, mtd_predicted_cost,
    mtd_actual_cost - mtd_predicted_cost AS mtd_variance,
    CAST((mtd_actual_cost - mtd_predicted_cost) / nullif(mtd_predicted_cost, 0) AS DOUBLE) AS mtd_variance_pct,
    CAST(mtd_actual_cost * days_in_month / day_of_month AS DECIMAL(38, 10)) AS projected_month_end_cost,
    CASE WHEN predicted_monthly_cost IS NULL OR predicted_monthly_cost = 0 THEN 'no_prediction'
         WHEN (mtd_actual_cost - mtd_predicted_cost) / mtd_predicted_cost > getvariable('tolerance') THEN 'over'
         WHEN (mtd_actual_cost - mtd_predicted_cost) / mtd_predicted_cost < -getvariable('tolerance') THEN 'under'
         ELSE 'on_track' END AS status
FROM measured
WHERE usage_date >= getvariable('start') AND usage_date < getvariable('end')
ORDER BY usage_date, provider, service_name, match_value NULLS FIRST, billing_currency
