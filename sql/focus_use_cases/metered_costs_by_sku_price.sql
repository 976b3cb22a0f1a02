-- Analyze the different metered costs for a particular SKU
-- Source: https://focus.finops.org/use-case/analyze-the-different-metered-costs-for-a-particular-sku/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.1, v1.2)
-- Needs: SkuId, SkuPriceId, PricingUnit, ListUnitPrice, PricingQuantity
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT ProviderName,
       ChargePeriodStart,
       ChargePeriodEnd,
       SkuId,
       SkuPriceId,
       PricingUnit,
       ListUnitPrice,
       SUM(PricingQuantity) AS TotalPricingQuantity,
       SUM(ListCost) AS TotalListCost,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
GROUP BY ProviderName,
         ChargePeriodStart,
         ChargePeriodEnd,
         SkuId,
         SkuPriceId,
         PricingUnit,
         ListUnitPrice
ORDER BY ChargePeriodStart ASC
LIMIT 100
