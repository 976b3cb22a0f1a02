-- utilization_daily: one row per provider x resource x UTC day in [start, end).
-- Parameters: getvariable('start'), getvariable('end') (DATE, end exclusive).
-- CPU/memory percentages come from hourly values (avg of hourly averages, p95 of hourly
-- averages, max of hourly maxima); counters are summed; gauges of connections are averaged.
-- Cost is the day's resource-level billing (matched case-insensitively on resource_id);
-- it is NULL, never 0, when billing has no row for the resource that day.
WITH hourly AS (
    SELECT usage_date, provider, resource_id, hour_start, metric, resource_name, resource_type,
           region, sub_account_id, "avg", "max", "sum",
           CASE WHEN us_into_day % 3600000000 = 0 AND us_into_day BETWEEN 0 AND 23 * 3600000000
                THEN CAST(us_into_day // 3600000000 AS INTEGER) END AS hour_of_day
    -- the day's midnight in microseconds as integer arithmetic (a DATE to TIMESTAMPTZ cast goes
    -- through the time zone calendar on every row)
    FROM (SELECT *, epoch_us(hour_start) - (usage_date - DATE '1970-01-01') * CAST(86400000000 AS BIGINT)
                    AS us_into_day
          FROM metrics_hourly)
    WHERE usage_date >= getvariable('start') AND usage_date < getvariable('end')
),
usage AS (
    SELECT
        usage_date,
        provider,
        resource_id,
        -- the resource as last seen that day: one arg_max of the four, all from the same row
        arg_max({'name': resource_name, 'type': resource_type, 'region': region, 'sub_account_id': sub_account_id},
                hour_start) AS seen,
        -- count(DISTINCT hour_start), cheaply: a bit per whole hour of the day, plus any other
        -- hour_start (not on the hour, or outside the day) counted apart; the shift stays in
        -- UBIGINT (an INTEGER operand would widen every row's bit to HUGEINT)
        coalesce(bit_count(bit_or(CAST(1 AS UBIGINT) << CAST(hour_of_day AS UBIGINT))), 0)
            + coalesce(len(list_distinct(list(hour_start) FILTER (WHERE hour_of_day IS NULL))), 0)
            AS hours_with_data,
        avg("avg") FILTER (WHERE metric = 'cpu_utilization_pct') AS cpu_avg_pct,
        quantile_cont("avg", 0.95) FILTER (WHERE metric = 'cpu_utilization_pct') AS cpu_p95_pct,
        max(coalesce("max", "avg")) FILTER (WHERE metric = 'cpu_utilization_pct') AS cpu_max_pct,
        avg("avg") FILTER (WHERE metric = 'memory_utilization_pct') AS memory_avg_pct,
        max(coalesce("max", "avg")) FILTER (WHERE metric = 'memory_utilization_pct') AS memory_max_pct,
        sum("sum") FILTER (WHERE metric = 'network_in_bytes') AS network_in_bytes,
        sum("sum") FILTER (WHERE metric = 'network_out_bytes') AS network_out_bytes,
        sum("sum") FILTER (WHERE metric = 'disk_read_bytes') AS disk_read_bytes,
        sum("sum") FILTER (WHERE metric = 'disk_write_bytes') AS disk_write_bytes,
        sum("sum") FILTER (WHERE metric = 'requests') AS requests,
        sum("sum") FILTER (WHERE metric = 'invocations') AS invocations,
        sum("sum") FILTER (WHERE metric = 'errors') AS errors,
        avg(coalesce("avg", "sum")) FILTER (WHERE metric = 'connections') AS connections_avg,
        max(coalesce("max", "sum", "avg")) FILTER (WHERE metric = 'connections') AS connections_max
    FROM hourly
    GROUP BY usage_date, provider, resource_id
),
resource_cost AS (
    SELECT usage_date, provider, lower(resource_id) AS resource_key,
           sum(billed_cost) AS billed_cost,
           sum(effective_cost) AS effective_cost,
           min(billing_currency) AS billing_currency
    FROM cost_daily
    WHERE resource_id IS NOT NULL
      AND usage_date >= getvariable('start') AND usage_date < getvariable('end')
    GROUP BY usage_date, provider, lower(resource_id)
)
SELECT
    u.usage_date, u.provider, u.resource_id, u.seen.name AS resource_name, u.seen.type AS resource_type,
    u.seen.region AS region, u.seen.sub_account_id AS sub_account_id, u.hours_with_data, u.cpu_avg_pct, u.cpu_p95_pct, u.cpu_max_pct,
    u.memory_avg_pct, u.memory_max_pct, u.network_in_bytes, u.network_out_bytes,
    u.disk_read_bytes, u.disk_write_bytes, u.requests, u.invocations, u.errors,
    u.connections_avg, u.connections_max,
    c.billed_cost, c.effective_cost, c.billing_currency
FROM usage AS u
LEFT JOIN resource_cost AS c
    ON c.usage_date = u.usage_date AND c.provider = u.provider AND c.resource_key = lower(u.resource_id)
ORDER BY u.usage_date, u.provider, u.resource_id
