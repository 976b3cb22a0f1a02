-- anomalies: the cost_anomalies spikes, drops and new spend in [start, end), latest day first and
-- the largest moves first, with the resources that moved most. Money rounded to cents.
-- Parameters: getvariable('start'), getvariable('end') (DATE, end exclusive).
SELECT
    usage_date, provider, sub_account_id, service_name, billing_currency, status, severity,
    round(actual_cost, 2) AS actual_cost,
    round(expected_cost, 2) AS expected_cost,
    round(deviation, 2) AS deviation,
    round(deviation_pct, 1) AS deviation_pct,
    round(robust_z, 1) AS robust_z,
    baseline,
    array_to_string(
        list_transform(top_resources, lambda r: r.resource_id || ' (' || CAST(round(r.change, 2) AS VARCHAR) || ')'),
        ', ') AS top_resources
FROM cost_anomalies
WHERE usage_date >= getvariable('start') AND usage_date < getvariable('end')
  AND status IN ('spike', 'drop', 'new')
ORDER BY usage_date DESC, abs(deviation) DESC NULLS LAST, provider, sub_account_id, service_name
