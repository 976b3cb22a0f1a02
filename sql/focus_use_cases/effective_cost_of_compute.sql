-- Report effective cost of compute
-- Source: https://focus.finops.org/use-case/effective-cost-compute/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.0, v1.1, v1.2)
-- Needs: CommitmentDiscountType, ServiceCategory
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT CommitmentDiscountType,
       ProviderName,
       ServiceName,
       SubAccountId,
       SubAccountName,
       BillingPeriodStart,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  AND BillingPeriodEnd <= ?
  AND ServiceCategory = 'Compute'
GROUP BY CommitmentDiscountType,
         ServiceName,
         ProviderName,
         SubAccountId,
         SubAccountName,
         BillingPeriodStart
