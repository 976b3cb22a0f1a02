-- daily_cost: billed cost per UTC day x cloud x billing currency over [start, end), rounded to cents.
-- Parameters: getvariable('start'), getvariable('end') (DATE, end exclusive).
SELECT
    usage_date,
    provider,
    billing_currency,
    round(sum(billed_cost), 2) AS billed_cost
FROM cost_daily
WHERE usage_date >= getvariable('start') AND usage_date < getvariable('end')
GROUP BY usage_date, provider, billing_currency
ORDER BY usage_date, provider, billing_currency
