-- focus_cost_and_usage: cost_daily in FinOps FOCUS 1.2 column names and types.
-- Decisions where our sources do not carry a FOCUS value (see docs/data-dictionary.md):
--   ListCost / ContractedCost: the source's list cost when known, else BilledCost (FOCUS: both
--     MUST NOT be null; ContractedCost equals ListCost without negotiated prices, and equals
--     BilledCost for Tax/Credit charges without unit prices).
--   ChargeClass: NULL (rows are never corrections of a prior invoice in our sources).
--   BillingPeriod: the calendar month of the charge; ChargePeriod: the UTC day.
--   ServiceCategory / ServiceSubcategory: the seed sql/seeds/focus_service_category.csv
--     (FOCUS allowed values); a service it does not list is 'Other'.
--   ConsumedQuantity / ConsumedUnit: only on Usage rows (FOCUS requires NULL otherwise).
SELECT
    c.billed_cost AS BilledCost,
    c.effective_cost AS EffectiveCost,
    CASE WHEN c.charge_category IN ('Tax', 'Credit') THEN c.billed_cost
         ELSE coalesce(c.list_cost, c.billed_cost) END AS ListCost,
    CASE WHEN c.charge_category IN ('Tax', 'Credit') THEN c.billed_cost
         ELSE coalesce(c.list_cost, c.billed_cost) END AS ContractedCost,
    CAST(c.usage_date AS TIMESTAMPTZ) AS ChargePeriodStart,
    CAST(c.usage_date + 1 AS TIMESTAMPTZ) AS ChargePeriodEnd,
    CAST(date_trunc('month', c.usage_date) AS TIMESTAMPTZ) AS BillingPeriodStart,
    CAST(date_trunc('month', c.usage_date) + INTERVAL 1 MONTH AS TIMESTAMPTZ) AS BillingPeriodEnd,
    c.billing_account_id AS BillingAccountId,
    CAST(NULL AS VARCHAR) AS BillingAccountName,
    c.billing_currency AS BillingCurrency,
    c.charge_category AS ChargeCategory,
    CAST(NULL AS VARCHAR) AS ChargeClass,
    coalesce(c.charge_description, c.service_name || ' ' || coalesce(c.sku, c.charge_category)) AS ChargeDescription,
    CASE WHEN c.charge_category = 'Usage' THEN 'Usage-Based' ELSE 'One-Time' END AS ChargeFrequency,
    p.name AS InvoiceIssuerName,
    p.name AS ProviderName,
    p.name AS PublisherName,
    c.service_name AS ServiceName,
    coalesce(s.service_category, 'Other') AS ServiceCategory,
    coalesce(s.service_subcategory, 'Other (Other)') AS ServiceSubcategory,
    c.region AS RegionId,
    c.region AS RegionName,
    c.resource_id AS ResourceId,
    coalesce(c.resource_name, c.resource_id) AS ResourceName,
    c.resource_type AS ResourceType,
    c.sub_account_id AS SubAccountId,
    c.sub_account_name AS SubAccountName,
    c.sku AS SkuId,
    CASE WHEN c.charge_category IN ('Usage', 'Purchase') THEN CAST(c.usage_quantity AS DECIMAL(38, 10)) END
        AS PricingQuantity,
    CASE WHEN c.charge_category IN ('Usage', 'Purchase') THEN nullif(c.usage_unit, '') END AS PricingUnit,
    CASE WHEN c.charge_category = 'Usage' THEN CAST(c.usage_quantity AS DECIMAL(38, 10)) END AS ConsumedQuantity,
    CASE WHEN c.charge_category = 'Usage' THEN nullif(c.usage_unit, '') END AS ConsumedUnit,
    CAST(to_json(coalesce(c.tags, MAP {})) AS JSON) AS Tags,
    c.provider AS x_Provider,
    c.source AS x_Source
FROM cost_daily AS c
LEFT JOIN (VALUES ('aws', 'AWS'), ('gcp', 'Google Cloud'), ('azure', 'Microsoft')) AS p(provider, name)
    ON p.provider = c.provider
LEFT JOIN focus_service_category AS s ON s.provider = c.provider AND s.service_name = c.service_name
