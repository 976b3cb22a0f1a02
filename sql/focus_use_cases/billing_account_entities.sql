-- Understand the billing account or sub account entity
-- Source: https://focus.finops.org/use-case/understand-the-billing-account-or-sub-account-entity/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.2)
-- Needs: BillingAccountType, BillingAccountName
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT DISTINCT ProviderName,
                BillingAccountID,
                BillingAccountName,
                BillingAccountType
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
