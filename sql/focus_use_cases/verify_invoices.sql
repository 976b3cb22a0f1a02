-- Verify accuracy of provider invoices
-- Source: https://focus.finops.org/use-case/verify-invoices/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.0, v1.1, v1.2)
-- Needs: BillingAccountName, BillingPeriodStart/End
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT ProviderName,
       BillingAccountId,
       BillingAccountName,
       BillingCurrency,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  AND BillingPeriodEnd < ?
GROUP BY ProviderName,
         BillingAccountId,
         BillingAccountName,
         BillingCurrency
