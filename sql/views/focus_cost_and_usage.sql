-- focus_cost_and_usage: cost_daily as the FOCUS 1.2 CostAndUsage dataset: every FOCUS 1.2 column,
-- in FOCUS names and types. Rows from a native export (source `export:*`, and GCP's detailed billing
-- export `bigquery:detailed_export`) carry the export's own FOCUS values; rows
-- from a query API have none for some columns, and then (see docs/data-dictionary.md):
--   ListCost / ContractedCost: the source's list cost when known, else BilledCost (FOCUS: both
--     MUST NOT be null; ContractedCost equals ListCost without negotiated prices, and equals
--     BilledCost for Tax/Credit charges without unit prices).
--   ChargeClass: NULL (API rows are never corrections of a prior invoice).
--   ChargeFrequency: Usage-Based for Usage rows, else One-Time.
--   BillingPeriod: the calendar month of the charge; ChargePeriod: the UTC day.
--   ServiceCategory / ServiceSubcategory: the seed sql/seeds/focus_service_category.csv
--     (FOCUS allowed values); a service it does not list is 'Other'.
--   SubAccountName: the sub-account id where the source has no display name (as ResourceName).
--   PricingQuantity / PricingUnit: the usage quantity and unit on Usage and Purchase rows;
--     ConsumedQuantity / ConsumedUnit only on Usage rows (FOCUS requires NULL otherwise).
--   PricingCurrency: BillingCurrency (no source prices in another currency without saying so).
--   SubAccountType: the provider's own name of its sub-account kind.
--   Commitment discount, capacity reservation, invoice, SKU price and unit price columns: NULL.
SELECT
    c.availability_zone AS AvailabilityZone,
    c.billed_cost AS BilledCost,
    c.billing_account_id AS BillingAccountId,
    c.billing_account_name AS BillingAccountName,
    c.billing_account_type AS BillingAccountType,
    c.billing_currency AS BillingCurrency,
    CAST(date_trunc('month', c.usage_date) + INTERVAL 1 MONTH AS TIMESTAMPTZ) AS BillingPeriodEnd,
    CAST(date_trunc('month', c.usage_date) AS TIMESTAMPTZ) AS BillingPeriodStart,
    c.capacity_reservation_id AS CapacityReservationId,
    c.capacity_reservation_status AS CapacityReservationStatus,
    c.charge_category AS ChargeCategory,
    c.charge_class AS ChargeClass,
    coalesce(c.charge_description, c.service_name || ' ' || coalesce(c.sku, c.charge_category)) AS ChargeDescription,
    coalesce(c.charge_frequency, CASE WHEN c.charge_category = 'Usage' THEN 'Usage-Based' ELSE 'One-Time' END)
        AS ChargeFrequency,
    CAST(c.usage_date + 1 AS TIMESTAMPTZ) AS ChargePeriodEnd,
    CAST(c.usage_date AS TIMESTAMPTZ) AS ChargePeriodStart,
    c.commitment_discount_category AS CommitmentDiscountCategory,
    c.commitment_discount_id AS CommitmentDiscountId,
    c.commitment_discount_name AS CommitmentDiscountName,
    CAST(c.commitment_discount_quantity AS DECIMAL(38, 10)) AS CommitmentDiscountQuantity,
    c.commitment_discount_status AS CommitmentDiscountStatus,
    c.commitment_discount_type AS CommitmentDiscountType,
    c.commitment_discount_unit AS CommitmentDiscountUnit,
    CASE WHEN c.charge_category = 'Usage' THEN CAST(c.usage_quantity AS DECIMAL(38, 10)) END AS ConsumedQuantity,
    CASE WHEN c.charge_category = 'Usage' THEN nullif(c.usage_unit, '') END AS ConsumedUnit,
    coalesce(c.contracted_cost, CASE WHEN c.charge_category IN ('Tax', 'Credit') THEN c.billed_cost
         ELSE coalesce(c.list_cost, c.billed_cost) END) AS ContractedCost,
    c.contracted_unit_price AS ContractedUnitPrice,
    c.effective_cost AS EffectiveCost,
    c.invoice_id AS InvoiceId,
    coalesce(c.invoice_issuer_name, p.name) AS InvoiceIssuerName,
    CASE WHEN c.charge_category IN ('Tax', 'Credit') THEN c.billed_cost
         ELSE coalesce(c.list_cost, c.billed_cost) END AS ListCost,
    c.list_unit_price AS ListUnitPrice,
    c.pricing_category AS PricingCategory,
    coalesce(c.pricing_currency, c.billing_currency) AS PricingCurrency,
    c.pricing_currency_contracted_unit_price AS PricingCurrencyContractedUnitPrice,
    coalesce(c.pricing_currency_effective_cost, CASE WHEN c.pricing_currency IS NULL THEN c.effective_cost END)
        AS PricingCurrencyEffectiveCost,
    c.pricing_currency_list_unit_price AS PricingCurrencyListUnitPrice,
    CASE WHEN c.source LIKE 'export:%' OR c.source = 'bigquery:detailed_export' THEN CAST(c.pricing_quantity AS DECIMAL(38, 10))
         WHEN c.charge_category IN ('Usage', 'Purchase') THEN CAST(c.usage_quantity AS DECIMAL(38, 10)) END
        AS PricingQuantity,
    CASE WHEN c.source LIKE 'export:%' OR c.source = 'bigquery:detailed_export' THEN c.pricing_unit
         WHEN c.charge_category IN ('Usage', 'Purchase') THEN nullif(c.usage_unit, '') END AS PricingUnit,
    p.name AS ProviderName,
    coalesce(c.publisher_name, p.name) AS PublisherName,
    c.region AS RegionId,
    coalesce(c.region_name, c.region) AS RegionName,
    c.resource_id AS ResourceId,
    coalesce(c.resource_name, c.resource_id) AS ResourceName,
    c.resource_type AS ResourceType,
    coalesce(c.service_category, s.service_category, 'Other') AS ServiceCategory,
    c.service_name AS ServiceName,
    coalesce(c.service_subcategory, s.service_subcategory, 'Other (Other)') AS ServiceSubcategory,
    c.sku AS SkuId,
    c.sku_meter AS SkuMeter,
    CAST(c.sku_price_details AS JSON) AS SkuPriceDetails,
    c.sku_price_id AS SkuPriceId,
    c.sub_account_id AS SubAccountId,
    coalesce(c.sub_account_name, c.sub_account_id) AS SubAccountName,
    coalesce(c.sub_account_type, p.sub_account_type) AS SubAccountType,
    CAST(to_json(coalesce(c.tags, MAP {})) AS JSON) AS Tags,
    c.provider AS x_Provider,
    c.source AS x_Source
FROM cost_daily AS c
LEFT JOIN (
    VALUES ('aws', 'AWS', 'AWS Account'), ('gcp', 'Google Cloud', 'GCP Project'), ('azure', 'Microsoft', 'Subscription')
) AS p(provider, name, sub_account_type)
    ON p.provider = c.provider
LEFT JOIN focus_service_category AS s ON s.provider = c.provider AND s.service_name = c.service_name
