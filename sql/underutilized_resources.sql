-- underutilized_resources: one row per resource x rule x as-of day in [start, end) whose rule fired.
-- Parameters: getvariable('start'), getvariable('end') (DATE, as-of days, end exclusive),
--             getvariable('coverage_floor') (0-1: coverage at or above it is 'high' confidence).
-- Rules are rows of the seed table underutilization_rules: a NULL threshold is not checked,
-- every non-NULL one must pass, and a measure with no data never passes.
-- The window of as-of day D is [D - window_days + 1, D + 1): the last window_days days.
-- Windows are built from utilization_daily (one row per resource x day, materialized first), so
-- a backfill does not read the hourly rows again; only rules with hourly criteria (P95 of hourly
-- CPU, recent hourly CPU, shares of hours) read metrics_hourly, for their resource types only.
WITH rules AS (
    SELECT
        rule_id, provider, resource_type, action, source_title, source_url,
        row_number() OVER (ORDER BY rule_id) AS rule_no,  -- integer keys make the window joins cheaper
        CAST(window_days AS INTEGER) AS window_days,
        CAST(savings_fraction AS DOUBLE) AS savings_fraction,
        CAST(min_days_matched AS INTEGER) AS min_days_matched,
        CAST(day_cpu_avg_at_most_pct AS DOUBLE) AS day_cpu_avg_at_most_pct,
        CAST(day_network_at_most_bytes AS DOUBLE) AS day_network_at_most_bytes,
        CAST(day_requests_below AS DOUBLE) AS day_requests_below,
        CAST(cpu_p95_below_pct AS DOUBLE) AS cpu_p95_below_pct,
        CAST(cpu_p95_at_most_pct AS DOUBLE) AS cpu_p95_at_most_pct,
        CAST(recent_days AS INTEGER) AS recent_days,
        CAST(recent_cpu_at_most_pct AS DOUBLE) AS recent_cpu_at_most_pct,
        CAST(network_out_per_day_at_most_bytes AS DOUBLE) AS network_out_per_day_at_most_bytes,
        CAST(connections_at_most AS DOUBLE) AS connections_at_most,
        CAST(hour_cpu_below_pct AS DOUBLE) AS hour_cpu_below_pct,
        CAST(hour_cpu_share_at_least AS DOUBLE) AS hour_cpu_share_at_least,
        CAST(hour_network_in_below_bytes AS DOUBLE) AS hour_network_in_below_bytes,
        CAST(hour_network_in_share_at_least AS DOUBLE) AS hour_network_in_share_at_least,
        CAST(hour_network_out_below_bytes AS DOUBLE) AS hour_network_out_below_bytes,
        CAST(hour_network_out_share_at_least AS DOUBLE) AS hour_network_out_share_at_least
    FROM underutilization_rules
),
as_of AS (
    SELECT CAST(d AS DATE) AS as_of_date
    FROM range(CAST(getvariable('start') AS TIMESTAMP), CAST(getvariable('end') AS TIMESTAMP), INTERVAL 1 DAY) AS t(d)
),
lookback AS (  -- the earliest day any window (or the 30-day cost) reaches back to
    SELECT CAST(getvariable('start') AS DATE) - (greatest(max(window_days), 30) - 1) AS first_day FROM rules
),
days AS (  -- one row per resource x day with data
    SELECT u.provider, u.resource_id, u.usage_date, u.resource_name, u.resource_type, u.region,
           u.sub_account_id, u.hours_with_data, u.cpu_avg_pct, u.cpu_max_pct, u.network_in_bytes,
           u.network_out_bytes, u.requests, u.connections_max
    FROM utilization_daily AS u, lookback AS l
    WHERE u.usage_date >= l.first_day AND u.usage_date < getvariable('end')
),
resources AS (  -- each resource as last seen, numbered (rid) for the window joins
    SELECT provider, resource_id, row_number() OVER (ORDER BY provider, resource_id) AS rid,
           arg_max(resource_name, usage_date) AS resource_name,
           arg_max(resource_type, usage_date) AS resource_type,
           arg_max(region, usage_date) AS region,
           arg_max(sub_account_id, usage_date) AS sub_account_id
    FROM days
    GROUP BY provider, resource_id
),
hour_rules AS (  -- rules with a criterion on hourly values
    SELECT * FROM rules
    WHERE coalesce(cpu_p95_below_pct, cpu_p95_at_most_pct, recent_cpu_at_most_pct, hour_cpu_below_pct,
                   hour_network_in_below_bytes, hour_network_out_below_bytes) IS NOT NULL
),
hours AS (  -- one row per resource x hour, for the resource types an hourly rule reads
    SELECT m.provider, m.resource_id, m.usage_date, m.hour_start,
           max(m."avg") FILTER (WHERE m.metric = 'cpu_utilization_pct') AS cpu_avg,
           max(coalesce(m."max", m."avg")) FILTER (WHERE m.metric = 'cpu_utilization_pct') AS cpu_max,
           sum(m."sum") FILTER (WHERE m.metric = 'network_in_bytes') AS net_in,
           sum(m."sum") FILTER (WHERE m.metric = 'network_out_bytes') AS net_out
    FROM metrics_hourly AS m, lookback AS l
    WHERE m.usage_date >= l.first_day AND m.usage_date < getvariable('end')
      AND m.provider IN (SELECT provider FROM hour_rules)
      AND m.metric IN ('cpu_utilization_pct', 'network_in_bytes', 'network_out_bytes')
      AND (m.provider, m.resource_id) IN (
          SELECT x.provider, x.resource_id FROM resources AS x
          SEMI JOIN hour_rules AS r ON r.provider = x.provider AND r.resource_type = x.resource_type)
    GROUP BY m.provider, m.resource_id, m.usage_date, m.hour_start
),
hour_days AS (  -- per hourly rule x resource x day: what its hourly criteria read
    SELECT r.rule_id, h.provider, h.resource_id, h.usage_date,
           max(h.cpu_avg) AS cpu_avg_max,
           list(h.cpu_max) FILTER (WHERE h.cpu_max IS NOT NULL) AS cpu_max_hours,
           count(h.cpu_avg) AS cpu_hours,
           count(*) FILTER (WHERE h.cpu_avg < r.hour_cpu_below_pct) AS cpu_below_hours,
           count(h.net_in) AS net_in_hours,
           count(*) FILTER (WHERE h.net_in < r.hour_network_in_below_bytes) AS net_in_below_hours,
           count(h.net_out) AS net_out_hours,
           count(*) FILTER (WHERE h.net_out < r.hour_network_out_below_bytes) AS net_out_below_hours
    FROM hour_rules AS r
    JOIN resources AS x ON x.provider = r.provider AND x.resource_type = r.resource_type
    JOIN hours AS h ON h.provider = x.provider AND h.resource_id = x.resource_id
    GROUP BY r.rule_id, h.provider, h.resource_id, h.usage_date
),
candidates AS (
    SELECT a.as_of_date, r.*, x.rid, x.resource_id, x.resource_name, x.region, x.sub_account_id,
           a.as_of_date - (r.window_days - 1) AS window_start,
           a.as_of_date + 1 AS window_end
    FROM as_of AS a
    CROSS JOIN rules AS r
    JOIN resources AS x ON x.provider = r.provider AND x.resource_type = r.resource_type
),
rule_days AS (  -- per rule x resource: its days with data; the day-level criteria decide day_matched
    SELECT
        r.rule_no, x.rid, d.usage_date, d.hours_with_data, d.cpu_avg_pct, d.cpu_max_pct,
        d.network_in_bytes, d.network_out_bytes, d.requests, d.connections_max,
        coalesce(
            (r.day_cpu_avg_at_most_pct IS NULL OR d.cpu_avg_pct <= r.day_cpu_avg_at_most_pct)
            AND (r.day_network_at_most_bytes IS NULL
                 OR coalesce(d.network_in_bytes, 0) + coalesce(d.network_out_bytes, 0) <= r.day_network_at_most_bytes
                    AND coalesce(d.network_in_bytes, d.network_out_bytes) IS NOT NULL)
            AND (r.day_requests_below IS NULL OR d.requests < r.day_requests_below),
            false) AS day_matched
    FROM rules AS r
    JOIN resources AS x ON x.provider = r.provider AND x.resource_type = r.resource_type
    JOIN days AS d ON d.provider = x.provider AND d.resource_id = x.resource_id
),
can_fire AS (  -- a rule needing N matched days cannot fire for a resource with fewer in the whole range
    SELECT d.rule_no, d.rid
    FROM rule_days AS d JOIN rules AS r USING (rule_no)
    GROUP BY d.rule_no, d.rid
    HAVING count(*) FILTER (WHERE d.day_matched) >= coalesce(any_value(r.min_days_matched), 0)
),
window_days AS (  -- each candidate's days with data
    SELECT c.as_of_date, c.rule_no, c.rid, d.* EXCLUDE (rule_no, rid, usage_date)
    FROM candidates AS c
    SEMI JOIN can_fire AS p ON p.rule_no = c.rule_no AND p.rid = c.rid
    JOIN rule_days AS d
      ON d.rule_no = c.rule_no AND d.rid = c.rid
     AND d.usage_date >= c.window_start AND d.usage_date < c.window_end
),
measures AS (  -- window measures from the day rows
    SELECT
        as_of_date, rule_no, rid,
        count(*) FILTER (WHERE day_matched) AS days_matched,
        CAST(sum(hours_with_data) AS BIGINT) AS hours_with_data,
        count(*) AS days_with_data,
        avg(cpu_avg_pct) AS cpu_avg_pct,
        max(cpu_max_pct) AS cpu_max_pct,
        sum(network_in_bytes) AS network_in_bytes,
        sum(network_out_bytes) AS network_out_bytes,
        sum(network_out_bytes) / nullif(count(network_out_bytes), 0) AS network_out_per_day,
        sum(requests) AS requests,
        max(connections_max) AS connections_max
    FROM window_days
    GROUP BY as_of_date, rule_no, rid
),
hour_measures AS (  -- window measures from hourly values, for the rules with hourly criteria
    SELECT
        c.as_of_date, c.rule_no, c.rid,
        list_aggregate(flatten(list(hd.cpu_max_hours)), 'quantile_cont', 0.95) AS cpu_p95_pct,
        max(hd.cpu_avg_max) FILTER (WHERE hd.usage_date > c.as_of_date - c.recent_days) AS recent_cpu_max_pct,
        CAST(sum(hd.cpu_below_hours) AS DOUBLE) / nullif(sum(hd.cpu_hours), 0) AS hour_cpu_share,
        CAST(sum(hd.net_in_below_hours) AS DOUBLE) / nullif(sum(hd.net_in_hours), 0) AS hour_network_in_share,
        CAST(sum(hd.net_out_below_hours) AS DOUBLE) / nullif(sum(hd.net_out_hours), 0) AS hour_network_out_share
    FROM candidates AS c
    JOIN hour_days AS hd
      ON hd.rule_id = c.rule_id AND hd.provider = c.provider AND hd.resource_id = c.resource_id
     AND hd.usage_date >= c.window_start AND hd.usage_date < c.window_end
    GROUP BY c.as_of_date, c.rule_no, c.rid
),
evaluated AS (
    SELECT c.*, m.* EXCLUDE (as_of_date, rule_no, rid), h.* EXCLUDE (as_of_date, rule_no, rid),
        coalesce(
            (c.min_days_matched IS NULL OR m.days_matched >= c.min_days_matched)
            AND (c.recent_cpu_at_most_pct IS NULL OR h.recent_cpu_max_pct <= c.recent_cpu_at_most_pct)
            AND (c.network_out_per_day_at_most_bytes IS NULL
                 OR m.network_out_per_day <= c.network_out_per_day_at_most_bytes)
            AND (c.connections_at_most IS NULL OR m.connections_max <= c.connections_at_most)
            AND (c.hour_cpu_share_at_least IS NULL OR h.hour_cpu_share >= c.hour_cpu_share_at_least)
            AND (c.hour_network_in_share_at_least IS NULL
                 OR h.hour_network_in_share >= c.hour_network_in_share_at_least)
            AND (c.hour_network_out_share_at_least IS NULL
                 OR h.hour_network_out_share >= c.hour_network_out_share_at_least)
            AND (c.cpu_p95_below_pct IS NULL OR h.cpu_p95_pct < c.cpu_p95_below_pct)
            AND (c.cpu_p95_at_most_pct IS NULL OR h.cpu_p95_pct <= c.cpu_p95_at_most_pct),
            false) AS fired
    FROM candidates AS c
    JOIN measures AS m USING (as_of_date, rule_no, rid)
    LEFT JOIN hour_measures AS h USING (as_of_date, rule_no, rid)
),
fired AS (  -- a resize candidate that is also idle is reported once, as a shutdown
    SELECT e.* FROM evaluated AS e
    WHERE e.fired
      AND NOT (e.action = 'resize' AND EXISTS (
          SELECT 1 FROM evaluated AS s
          WHERE s.fired AND s.action = 'shutdown' AND s.as_of_date = e.as_of_date
            AND s.provider = e.provider AND s.resource_id = e.resource_id))
),
daily_cost AS (  -- per resource (matched case-insensitively) x day x currency
    SELECT x.rid, b.usage_date, b.billing_currency, sum(b.effective_cost) AS cost
    FROM cost_daily AS b, lookback AS l, resources AS x
    WHERE b.resource_id IS NOT NULL AND b.usage_date >= l.first_day AND b.usage_date < getvariable('end')
      AND x.provider = b.provider AND lower(x.resource_id) = lower(b.resource_id)
    GROUP BY x.rid, b.usage_date, b.billing_currency
),
trailing_cost AS (
    SELECT f.as_of_date, f.rule_no, f.rid, dc.billing_currency,
           sum(dc.cost) AS trailing_30d_cost,
           count(*) AS days_with_cost  -- daily_cost has one row per day and currency
    FROM fired AS f
    JOIN daily_cost AS dc
      ON dc.rid = f.rid
     AND dc.usage_date > f.as_of_date - 30 AND dc.usage_date <= f.as_of_date
    GROUP BY f.as_of_date, f.rule_no, f.rid, dc.billing_currency
    QUALIFY row_number() OVER (PARTITION BY f.as_of_date, f.rule_no, f.rid
                               ORDER BY sum(dc.cost) DESC, dc.billing_currency) = 1
)
SELECT
    f.as_of_date AS usage_date,
    f.provider, f.resource_id, f.resource_name, f.resource_type, f.region, f.sub_account_id,
    f.rule_id, f.action, f.source_title AS rule_source, f.source_url AS rule_source_url,
    f.window_start, f.window_end, f.window_days, f.days_with_data, f.hours_with_data,
    f.hours_with_data / (f.window_days * 24.0) AS coverage,
    CASE WHEN f.hours_with_data / (f.window_days * 24.0) >= getvariable('coverage_floor') THEN 'high'
         WHEN f.hours_with_data / (f.window_days * 24.0) >= 0.5 THEN 'medium'
         ELSE 'low' END AS confidence,
    CASE WHEN f.min_days_matched IS NOT NULL THEN f.days_matched END AS days_matched,
    f.cpu_avg_pct, f.cpu_p95_pct, f.cpu_max_pct, f.network_in_bytes, f.network_out_bytes,
    f.requests, f.connections_max,
    concat_ws('; ',
        CASE WHEN f.min_days_matched IS NOT NULL
             THEN format('{} of {} days matched (needs {})', f.days_matched, f.window_days, f.min_days_matched) END,
        CASE WHEN f.cpu_avg_pct IS NOT NULL
             THEN concat_ws(', ', format('CPU avg {:.2f}%', f.cpu_avg_pct),
                            CASE WHEN f.cpu_p95_pct IS NOT NULL THEN format('p95 {:.2f}%', f.cpu_p95_pct) END,
                            format('max {:.2f}%', f.cpu_max_pct)) END,
        CASE WHEN f.hour_cpu_share IS NOT NULL AND f.hour_cpu_share_at_least IS NOT NULL
             THEN format('{:.1f}% of hours below {}% CPU', 100 * f.hour_cpu_share, f.hour_cpu_below_pct) END,
        CASE WHEN f.network_in_bytes IS NOT NULL OR f.network_out_bytes IS NOT NULL
             THEN format('network in {:.1f} MB, out {:.1f} MB', coalesce(f.network_in_bytes, 0) / 1e6,
                         coalesce(f.network_out_bytes, 0) / 1e6) END,
        CASE WHEN f.requests IS NOT NULL THEN format('{:.0f} requests', f.requests) END,
        CASE WHEN f.connections_max IS NOT NULL THEN format('max {:.0f} connections', f.connections_max) END,
        format('{} of {} days with data', f.days_with_data, f.window_days)
    ) AS evidence,
    CAST(t.trailing_30d_cost AS DECIMAL(38, 10)) AS trailing_30d_cost,
    CAST(t.trailing_30d_cost / t.days_with_cost * (730.0 / 24.0) AS DECIMAL(38, 10)) AS monthly_run_rate,
    CAST(t.trailing_30d_cost / t.days_with_cost * (730.0 / 24.0) * f.savings_fraction AS DECIMAL(38, 10))
        AS estimated_monthly_savings,
    t.billing_currency
FROM fired AS f
LEFT JOIN trailing_cost AS t USING (as_of_date, rule_no, rid)
ORDER BY usage_date, provider, resource_id, rule_id
