-- month_to_date: the month's actual vs predicted vs forecast per cloud and billing currency, from
-- cost_trend_monthly (partition getvariable('month'), its first day) as of each cloud's last day
-- with billing, rounded to cents:
--   actual_mtd            billed cost so far (cost_trend_monthly.actual_cost)
--   predicted_mtd         the IaC prediction prorated to the days elapsed
--   predicted_month       the whole month's IaC prediction (NULL when nothing was predicted)
--   projected_month_end   run-rate projection of the actual to the month's end
--   forecast_month_end    actual_mtd + the provider's latest whole-account forecast (cost_forecast,
--                         service_name and sub_account_id NULL) of the month's remaining days; NULL
--                         unless that forecast covers every remaining day (only AWS forecasts today)
-- Parameters: getvariable('month') (DATE, first day of the month).
WITH month AS (
    SELECT provider, billing_currency,
           any_value(as_of_date) AS as_of_date,
           any_value(days_in_month) AS days_in_month,
           any_value(days_elapsed) AS days_elapsed,
           sum(actual_cost) AS actual_mtd,
           sum(prorated_predicted_cost) AS predicted_mtd,
           sum(predicted_cost) AS predicted_month,
           sum(projected_month_end_cost) AS projected_month_end
    FROM cost_trend_monthly
    WHERE usage_date = getvariable('month')
    GROUP BY provider, billing_currency
),
latest_forecast AS (  -- per cloud and currency: the newest whole-account forecast
    SELECT provider, billing_currency, max(usage_date) AS made_on
    FROM cost_forecast
    WHERE service_name IS NULL AND sub_account_id IS NULL
    GROUP BY provider, billing_currency
),
remaining AS (  -- that forecast over the days after as_of_date up to the month's end
    SELECT m.provider, m.billing_currency,
           sum(f.mean_cost) AS forecast_rest,
           sum(f.period_end - f.period_start) AS days_forecast
    FROM month AS m
    JOIN latest_forecast AS l ON l.provider = m.provider AND l.billing_currency = m.billing_currency
    JOIN cost_forecast AS f
      ON f.provider = l.provider AND f.billing_currency = l.billing_currency AND f.usage_date = l.made_on
     AND f.service_name IS NULL AND f.sub_account_id IS NULL
     AND f.period_start > m.as_of_date
     AND f.period_end <= CAST(getvariable('month') AS DATE) + INTERVAL 1 MONTH
    GROUP BY m.provider, m.billing_currency
)
SELECT
    m.provider,
    m.billing_currency,
    m.as_of_date,
    m.days_elapsed,
    m.days_in_month,
    round(m.actual_mtd, 2) AS actual_mtd,
    round(m.predicted_mtd, 2) AS predicted_mtd,
    round(m.predicted_month, 2) AS predicted_month,
    round(m.projected_month_end, 2) AS projected_month_end,
    CASE WHEN m.days_elapsed = m.days_in_month THEN round(m.actual_mtd, 2)
         WHEN r.days_forecast = m.days_in_month - m.days_elapsed THEN round(m.actual_mtd + r.forecast_rest, 2)
    END AS forecast_month_end
FROM month AS m
LEFT JOIN remaining AS r ON r.provider = m.provider AND r.billing_currency = m.billing_currency
ORDER BY m.provider, m.billing_currency
