-- Analyze credit memos
-- Source: https://focus.finops.org/use-case/analyze-credit-memos/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.2)
-- Needs: InvoiceId, ChargeCategory
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT ProviderName,
       InvoiceID,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
  AND ChargeCategory = 'Credit'
GROUP BY ProviderName,
         InvoiceID
