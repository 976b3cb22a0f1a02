-- Update budgets with billed costs
-- Source: https://focus.finops.org/use-case/update-budgets/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.0, v1.1, v1.2)
-- Needs: BillingPeriodStart/End
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT ProviderName,
       BillingPeriodStart,
       BillingPeriodEnd,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  AND BillingPeriodEnd < ?
GROUP BY ProviderName,
         BillingPeriodStart,
         BillingPeriodEnd
