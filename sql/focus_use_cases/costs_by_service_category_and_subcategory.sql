-- Report costs by service category and subcategory
-- Source: https://focus.finops.org/use-case/report-costs-by-service-category-and-subcategory/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.1, v1.2)
-- Needs: ServiceCategory, ServiceSubcategory
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT ProviderName,
       BillingCurrency,
       BillingPeriodStart,
       ServiceCategory,
       ServiceSubcategory,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  and BillingPeriodEnd < ?
GROUP BY ProviderName,
         BillingCurrency,
         BillingPeriodStart,
         ServiceCategory,
         ServiceSubcategory
ORDER BY TotalBilledCost DESC
