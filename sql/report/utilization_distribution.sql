-- utilization_distribution: per cloud x resource type, the distribution of the resources' daily
-- CPU and memory averages (utilization_daily) over [start, end): days measured, resources, min,
-- quartiles, 95th percentile, max and mean, in percent. Resource types without a CPU or memory
-- metric (buckets, load balancers, functions) have no row for it.
-- Parameters: getvariable('start'), getvariable('end') (DATE, end exclusive).
WITH daily AS (
    SELECT provider, resource_type, resource_id, 'CPU avg %' AS metric, cpu_avg_pct AS value
    FROM utilization_daily
    WHERE usage_date >= getvariable('start') AND usage_date < getvariable('end') AND cpu_avg_pct IS NOT NULL
    UNION ALL
    SELECT provider, resource_type, resource_id, 'Memory avg %' AS metric, memory_avg_pct AS value
    FROM utilization_daily
    WHERE usage_date >= getvariable('start') AND usage_date < getvariable('end') AND memory_avg_pct IS NOT NULL
)
SELECT
    provider, resource_type, metric,
    count(*) AS resource_days,
    count(DISTINCT resource_id) AS resources,
    round(min(value), 2) AS min_pct,
    round(quantile_cont(value, 0.25), 2) AS p25_pct,
    round(median(value), 2) AS median_pct,
    round(quantile_cont(value, 0.75), 2) AS p75_pct,
    round(quantile_cont(value, 0.95), 2) AS p95_pct,
    round(max(value), 2) AS max_pct,
    round(avg(value), 2) AS mean_pct
FROM daily
GROUP BY provider, resource_type, metric
ORDER BY provider, resource_type, metric
