-- top_underutilized: the resources the underutilization rules flag as of the latest as-of day in
-- [start, end), one row per resource (its rule with the largest estimated saving: a resource is
-- shut down or resized, not both), the largest savings first (rank; the report shows the top 15),
-- with evidence. flagged_resources and total_monthly_savings are per billing currency over every
-- flagged resource (never summed across currencies; NULL currency: no resource-level cost).
-- Parameters: getvariable('start'), getvariable('end') (DATE, end exclusive).
WITH latest AS (
    SELECT * FROM underutilized_resources
    WHERE usage_date = (
        SELECT max(usage_date) FROM underutilized_resources
        WHERE usage_date >= getvariable('start') AND usage_date < getvariable('end'))
),
per_resource AS (
    SELECT *,
           string_agg(rule_id, ', ' ORDER BY rule_id) OVER (PARTITION BY provider, resource_id) AS rules_fired
    FROM latest
    QUALIFY row_number() OVER (
        PARTITION BY provider, resource_id
        ORDER BY estimated_monthly_savings DESC NULLS LAST, rule_id) = 1
),
ranked AS (
    SELECT *,
           count(*) OVER (PARTITION BY billing_currency) AS flagged_resources,
           round(sum(estimated_monthly_savings) OVER (PARTITION BY billing_currency), 2) AS total_monthly_savings,
           row_number() OVER (ORDER BY estimated_monthly_savings DESC NULLS LAST, provider, resource_id) AS rank
    FROM per_resource
)
SELECT
    rank, usage_date AS as_of_date, provider, resource_type, resource_id,
    coalesce(resource_name, resource_id) AS resource, sub_account_id, region,
    rule_id, rules_fired, action, confidence, evidence, rule_source, rule_source_url,
    round(trailing_30d_cost, 2) AS trailing_30d_cost,
    round(estimated_monthly_savings, 2) AS estimated_monthly_savings,
    billing_currency, flagged_resources, total_monthly_savings
FROM ranked
ORDER BY rank
