-- Analyze effective cost by pricing currency
-- Source: https://focus.finops.org/use-case/analyze-effective-cost-by-pricing-currency/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.2)
-- Needs: PricingCurrency, PricingCurrencyEffectiveCost
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT ProviderName,
       PublisherName,
       ServiceName,
       PricingCurrency,
       SUM(PricingCurrencyEffectiveCost) AS TotalPricingCurrencyEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
GROUP BY ProviderName,
         PublisherName,
         ServiceName,
         PricingCurrency
