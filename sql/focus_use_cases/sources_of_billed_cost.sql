-- Identify sources of billed cost
-- Source: https://focus.finops.org/use-case/identify-sources-of-billed-cost/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.2)
-- Needs: InvoiceId, InvoiceIssuerName, PublisherName
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: the published text names InvoiceIssuer, which no FOCUS version defines; the FOCUS 1.2
--   column is InvoiceIssuerName.
SELECT ProviderName,
       PublisherName,
       InvoiceIssuerName,
       InvoiceID,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
GROUP BY ProviderName,
         PublisherName,
         InvoiceIssuerName,
         InvoiceID
