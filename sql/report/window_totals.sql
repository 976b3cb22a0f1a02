-- window_totals: billed and effective cost per cloud and billing currency over [start, end),
-- rounded to cents. Never summed across currencies (the demo bills Azure in USD and EUR).
-- Parameters: getvariable('start'), getvariable('end') (DATE, end exclusive).
-- By hand: SET VARIABLE start = DATE '2026-11-01'; SET VARIABLE "end" = DATE '2026-12-01'; .read this file
SELECT
    provider,
    billing_currency,
    count(DISTINCT usage_date) AS days_billed,
    round(sum(billed_cost), 2) AS billed_cost,
    round(sum(effective_cost), 2) AS effective_cost
FROM cost_daily
WHERE usage_date >= getvariable('start') AND usage_date < getvariable('end')
GROUP BY provider, billing_currency
ORDER BY provider, billing_currency
