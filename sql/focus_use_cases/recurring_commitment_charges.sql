-- Report recurring charges for commitment-based discounts over a period
-- Source: https://focus.finops.org/use-case/recurring-commitment-charges/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.0, v1.1, v1.2)
-- Needs: CommitmentDiscountId, CommitmentDiscountName, CommitmentDiscountType, ChargeFrequency
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT BillingPeriodStart,
       CommitmentDiscountId,
       CommitmentDiscountName,
       CommitmentDiscountType,
       ChargeFrequency,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  AND BillingPeriodStart < ?
  AND ChargeFrequency = 'Recurring'
  AND CommitmentDiscountId IS NOT NULL
GROUP BY BillingPeriodStart,
         CommitmentDiscountId,
         CommitmentDiscountName,
         CommitmentDiscountType,
         ChargeFrequency
