-- Determine Effective Savings Rate
-- Source: https://focus.finops.org/use-case/effective-savings-rate/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.0, v1.1, v1.2)
-- Needs: ListCost, ContractedCost, ContractedUnitPrice
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT ProviderName,
       EffectiveCost,
       ((ListCost - EffectiveCost) / ListCost) AS ESROverList,
       ((ContractedCost - EffectiveCost) / ContractedUnitPrice) AS ESROverContract
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
