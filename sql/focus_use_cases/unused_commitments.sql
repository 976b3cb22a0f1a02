-- Identify unused commitments
-- Source: https://focus.finops.org/use-case/identify-unused-commitments/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.0, v1.1, v1.2)
-- Needs: CommitmentDiscountId, CommitmentDiscountType, CommitmentDiscountStatus
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: CommitmentDiscountStatus is selected but not grouped in the published text (an error
--   in DuckDB and in ANSI SQL); it is added to the GROUP BY.
SELECT MIN(ChargePeriodStart) AS ChargePeriodStart,
       MAX(ChargePeriodEnd) AS ChargePeriodEnd,
       ProviderName,
       BillingAccountId,
       CommitmentDiscountId,
       CommitmentDiscountType,
       CommitmentDiscountStatus,
       SUM(BilledCost) AS TotalBilledCost,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  AND ChargePeriodEnd < ?
  AND CommitmentDiscountStatus = 'Unused'
GROUP BY ProviderName,
         BillingAccountId,
         CommitmentDiscountId,
         CommitmentDiscountType,
         CommitmentDiscountStatus
