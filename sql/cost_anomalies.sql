-- cost_anomalies: each UTC day's billed cost per provider x sub_account x service x billing
-- currency against its own baseline over the previous baseline_days days, for days in [start, end).
-- Parameters: getvariable('start'), getvariable('end') (DATE, end exclusive),
--             getvariable('baseline_days') (INTEGER, e.g. 28).
-- Thresholds are data: the seed anomaly_thresholds (one row per provider).
-- Reference: FinOps Framework, Anomaly Management capability (cost compared with its own history
-- by service and by account/project; new usage is expected to look anomalous).
--
-- A key's series runs over the days its provider has billing, from the key's first day in the
-- read window, with 0 on a billed day where the key has no row (a stopped service is a drop).
-- History = those days in [day - baseline_days, day). The baseline is the median of the
-- same-weekday history points when there are at least min_weekday_points of them (a weekly
-- pattern is its own baseline), else the median of all history points; MAD is the median absolute
-- deviation from that baseline over the same points. robust_z = deviation /
-- max(1.4826 x MAD, scale_floor_pct% of |expected|) (NULL when both are 0).
-- status: new (no history while the provider has at least min_history_days), insufficient_history,
-- spike / drop (severity low / medium / high), normal (severity none).
WITH bounds AS (
    SELECT CAST(getvariable('start') AS DATE) AS first_day,
           CAST(getvariable('end') AS DATE) AS end_day,
           CAST(getvariable('baseline_days') AS INTEGER) AS baseline_days
),
billed AS (  -- each key's billed cost per day, baseline window included
    SELECT c.usage_date, c.provider, c.sub_account_id, c.service_name, c.billing_currency,
           sum(c.billed_cost) AS cost
    FROM cost_daily AS c, bounds AS w
    WHERE c.usage_date >= w.first_day - w.baseline_days AND c.usage_date < w.end_day
    GROUP BY ALL
),
billed_days AS (
    SELECT DISTINCT provider, usage_date FROM billed
),
first_seen AS (
    SELECT provider, sub_account_id, service_name, billing_currency, min(usage_date) AS first_day
    FROM billed GROUP BY ALL
),
series AS (
    SELECT d.usage_date, k.provider, k.sub_account_id, k.service_name, k.billing_currency,
           coalesce(b.cost, 0) AS cost
    FROM first_seen AS k
    JOIN billed_days AS d ON d.provider = k.provider AND d.usage_date >= k.first_day
    LEFT JOIN billed AS b
      ON b.usage_date = d.usage_date AND b.provider = k.provider AND b.sub_account_id = k.sub_account_id
     AND b.service_name = k.service_name AND b.billing_currency = k.billing_currency
),
history AS (  -- per target day and key: what the baseline can read
    SELECT t.usage_date, t.provider, t.sub_account_id, t.service_name, t.billing_currency,
           any_value(t.cost) AS actual_cost,
           count(h.usage_date) AS history_days,
           count(h.usage_date) FILTER (WHERE isodow(h.usage_date) = isodow(t.usage_date)) AS weekday_points,
           median(h.cost) AS all_days_median,
           median(h.cost) FILTER (WHERE isodow(h.usage_date) = isodow(t.usage_date)) AS weekday_median,
           coalesce(max(abs(h.cost)), 0) AS history_max
    FROM series AS t
    CROSS JOIN bounds AS w
    LEFT JOIN series AS h
      ON h.provider = t.provider AND h.sub_account_id = t.sub_account_id AND h.service_name = t.service_name
     AND h.billing_currency = t.billing_currency
     AND h.usage_date >= t.usage_date - w.baseline_days AND h.usage_date < t.usage_date
    WHERE t.usage_date >= w.first_day
    GROUP BY t.usage_date, t.provider, t.sub_account_id, t.service_name, t.billing_currency
),
provider_days AS (  -- days the provider billed in each target day's baseline window
    SELECT t.provider, t.usage_date, count(d.usage_date) AS provider_history_days
    FROM (SELECT DISTINCT provider, usage_date FROM history) AS t
    CROSS JOIN bounds AS w
    LEFT JOIN billed_days AS d
      ON d.provider = t.provider AND d.usage_date >= t.usage_date - w.baseline_days AND d.usage_date < t.usage_date
    GROUP BY t.provider, t.usage_date
),
baseline AS (
    SELECT h.*, p.provider_history_days, th.*  EXCLUDE (provider),
           CASE WHEN h.weekday_points >= th.min_weekday_points THEN 'same_weekday' ELSE 'all_days' END AS baseline,
           CASE WHEN h.weekday_points >= th.min_weekday_points THEN h.weekday_median
                ELSE h.all_days_median END AS expected_cost,
           CASE WHEN h.weekday_points >= th.min_weekday_points THEN h.weekday_points
                ELSE h.history_days END AS baseline_points
    FROM history AS h
    JOIN provider_days AS p USING (provider, usage_date)
    JOIN anomaly_thresholds AS th ON th.provider = h.provider
    WHERE h.actual_cost <> 0 OR h.history_max <> 0  -- a key silent over the whole window says nothing
),
spread AS (
    SELECT b.usage_date, b.provider, b.sub_account_id, b.service_name, b.billing_currency,
           median(abs(h.cost - b.expected_cost)) AS mad_cost
    FROM baseline AS b
    CROSS JOIN bounds AS w
    JOIN series AS h
      ON h.provider = b.provider AND h.sub_account_id = b.sub_account_id AND h.service_name = b.service_name
     AND h.billing_currency = b.billing_currency
     AND h.usage_date >= b.usage_date - w.baseline_days AND h.usage_date < b.usage_date
     AND (b.baseline = 'all_days' OR isodow(h.usage_date) = isodow(b.usage_date))
    GROUP BY b.usage_date, b.provider, b.sub_account_id, b.service_name, b.billing_currency
),
scored AS (
    SELECT b.*, s.mad_cost,
           b.actual_cost - b.expected_cost AS deviation,
           CAST(b.actual_cost - b.expected_cost AS DOUBLE)
               / nullif(greatest(1.4826 * CAST(s.mad_cost AS DOUBLE),
                                 b.scale_floor_pct / 100.0 * abs(CAST(b.expected_cost AS DOUBLE))), 0) AS robust_z,
           CASE WHEN b.history_days = 0 AND b.provider_history_days >= b.min_history_days THEN 'new'
                WHEN b.history_days < b.min_history_days THEN 'insufficient_history' END AS early_status
    FROM baseline AS b
    LEFT JOIN spread AS s USING (usage_date, provider, sub_account_id, service_name, billing_currency)
),
rated AS (
    SELECT *,
           CASE WHEN early_status IS NOT NULL THEN NULL
                WHEN abs(deviation) < min_abs_change THEN 'none'
                WHEN robust_z IS NULL OR abs(robust_z) >= z_high THEN 'high'
                WHEN abs(robust_z) >= z_medium THEN 'medium'
                WHEN abs(robust_z) >= z_low THEN 'low'
                ELSE 'none' END AS severity
    FROM scored
),
flagged AS (
    SELECT *,
           coalesce(early_status,
                    CASE WHEN severity = 'none' THEN 'normal' WHEN deviation > 0 THEN 'spike' ELSE 'drop' END) AS status
    FROM rated
),
resource_days AS (
    SELECT c.usage_date, c.provider, c.sub_account_id, c.service_name, c.billing_currency, c.resource_id,
           sum(c.billed_cost) AS cost
    FROM cost_daily AS c, bounds AS w
    WHERE c.resource_id IS NOT NULL
      AND c.usage_date >= w.first_day - w.baseline_days AND c.usage_date < w.end_day
    GROUP BY ALL
),
moved AS (  -- per anomaly: each resource's cost that day minus its average over the baseline points
    SELECT f.usage_date, f.provider, f.sub_account_id, f.service_name, f.billing_currency, r.resource_id,
           CAST(coalesce(sum(r.cost) FILTER (WHERE r.usage_date = f.usage_date), 0)
                - coalesce(sum(r.cost) FILTER (WHERE r.usage_date < f.usage_date), 0) / f.baseline_points
                AS DECIMAL(38, 10)) AS change
    FROM flagged AS f
    CROSS JOIN bounds AS w
    JOIN resource_days AS r
      ON r.provider = f.provider AND r.sub_account_id = f.sub_account_id AND r.service_name = f.service_name
     AND r.billing_currency = f.billing_currency
     AND r.usage_date >= f.usage_date - w.baseline_days AND r.usage_date <= f.usage_date
     AND (f.baseline = 'all_days' OR isodow(r.usage_date) = isodow(f.usage_date))
    WHERE f.status IN ('spike', 'drop')
    GROUP BY f.usage_date, f.provider, f.sub_account_id, f.service_name, f.billing_currency, r.resource_id,
             f.baseline_points
),
top_moved AS (
    SELECT m.usage_date, m.provider, m.sub_account_id, m.service_name, m.billing_currency,
           list({'resource_id': m.resource_id, 'change': m.change}
                ORDER BY abs(m.change) DESC, m.resource_id) AS moved
    FROM moved AS m
    WHERE m.change <> 0
    GROUP BY ALL
)
SELECT
    f.usage_date, f.provider, f.sub_account_id, f.service_name, f.billing_currency,
    f.actual_cost,
    CASE WHEN f.early_status IS NULL THEN f.expected_cost END AS expected_cost,
    CASE WHEN f.early_status IS NULL THEN f.deviation END AS deviation,
    CASE WHEN f.early_status IS NULL THEN CAST(f.deviation AS DOUBLE) / nullif(CAST(f.expected_cost AS DOUBLE), 0)
         END AS deviation_pct,
    CASE WHEN f.early_status IS NULL THEN f.mad_cost END AS mad_cost,
    CASE WHEN f.early_status IS NULL THEN f.robust_z END AS robust_z,
    CASE WHEN f.early_status IS NULL THEN f.baseline END AS baseline,
    CASE WHEN f.early_status IS NULL THEN f.baseline_points END AS baseline_points,
    f.history_days,
    f.status,
    f.severity,
    t.moved[1:f.top_resources] AS top_resources
FROM flagged AS f
LEFT JOIN top_moved AS t USING (usage_date, provider, sub_account_id, service_name, billing_currency)
ORDER BY usage_date, provider, sub_account_id, service_name, billing_currency
