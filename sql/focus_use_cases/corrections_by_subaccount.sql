-- Report corrections by subaccount for a previously invoiced billing period
-- Source: https://focus.finops.org/use-case/corrections-by-subaccount/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.0, v1.1, v1.2)
-- Needs: ChargeClass, ServiceCategory
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT ProviderName,
       BillingAccountId,
       ServiceCategory,
       SubAccountId,
       SubAccountName,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  AND BillingPeriodEnd < ?
  AND ChargeClass = 'Correction'
GROUP BY ProviderName,
         BillingAccountId,
         SubAccountId,
         SubAccountName,
         ServiceCategory
