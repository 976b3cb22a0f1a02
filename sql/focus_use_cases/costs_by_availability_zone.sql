-- Analyze costs by availability zone for a subaccount
-- Source: https://focus.finops.org/use-case/costs-by-availability-zone/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.0, v1.1, v1.2)
-- Needs: AvailabilityZone, RegionName
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT ProviderName,
       RegionName,
       AvailabilityZone,
       BillingPeriodStart,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE SubAccountId = ?
  AND ChargePeriodStart >= ?
  AND ChargePeriodEnd < ?
GROUP BY ProviderName,
         RegionName,
         AvailabilityZone,
         BillingPeriodStart
ORDER BY ProviderName,
         RegionName,
         AvailabilityZone,
         BillingPeriodStart
