-- focus_cost_daily: a FOCUS 1.2 export's line items (relation export_rows, one billing period,
-- streamed) as cost_daily rows: one row per UTC day of ChargePeriodStart x the cost_daily key.
-- Used by every native export source (clouds/exports.py): AWS Data Exports "FOCUS 1.2 with AWS
-- columns", Azure Cost Management FocusCost. Provider extras come through x_ columns (NULL where
-- a provider has none). Money is cast to DECIMAL per line before it is summed (AWS delivers
-- BilledCost and the other cost columns as double). Parameters: provider, export_source,
-- ingested_at. x_charge_period_seconds (the longest charge period of the group) lets the
-- caller reject a monthly-granularity export; it is not stored.
SELECT
    getvariable('provider') AS provider,
    CAST(ChargePeriodStart AS DATE) AS usage_date,
    BillingAccountId AS billing_account_id,
    -- FocusCost writes SubAccountId as an ARM id, "/subscriptions/<subscription-guid>" (Microsoft
    -- Learn, "What is FOCUS?"); the query API, Monitor and AZURE_SUBSCRIPTION_IDS name a
    -- subscription by its GUID, lower-cased: one spelling of an account whichever source landed it.
    CASE WHEN lower(SubAccountId) LIKE '/subscriptions/%' THEN lower(split_part(SubAccountId, '/', 3))
         ELSE coalesce(SubAccountId, BillingAccountId) END AS sub_account_id,
    -- Microsoft writes "-2" or "Unassigned" where a column has no value (SkuPriceId, SubAccountName)
    -- and leaves ServiceName empty on MCA rounding adjustments, MACC shortfalls, credits and
    -- commitment purchases (FOCUS conformance summary): no placeholder is stored as a value.
    any_value(nullif(nullif(SubAccountName, 'Unassigned'), '-2')) AS sub_account_name,
    coalesce(nullif(ServiceName, ''), ChargeCategory) AS service_name,
    any_value(ServiceCategory) AS service_category,
    RegionId AS region,
    -- Azure: ARM ids are case-insensitive and Cost Management spells them in varying case (the FinOps
    -- toolkit lower-cases them for grouping, "How data is processed in FinOps hubs"); the query API
    -- answers them lower-cased and Monitor metrics are keyed so: one spelling for either source.
    CASE WHEN getvariable('provider') = 'azure' THEN lower(ResourceId) ELSE ResourceId END AS resource_id,
    any_value(ResourceName) AS resource_name,
    any_value(ResourceType) AS resource_type,
    coalesce(x_UsageType, SkuId) AS sku,
    ChargeCategory AS charge_category,
    any_value(ChargeDescription) AS charge_description,
    sum(CAST(ConsumedQuantity AS DOUBLE)) AS usage_quantity,
    any_value(ConsumedUnit) AS usage_unit,
    sum(CAST(BilledCost AS DECIMAL(38, 10))) AS billed_cost,
    sum(CAST(EffectiveCost AS DECIMAL(38, 10))) AS effective_cost,
    sum(CAST(ListCost AS DECIMAL(38, 10))) AS list_cost,
    BillingCurrency AS billing_currency,
    -- The map goes through the aggregate as its JSON text and is cast back (exact, key order kept):
    -- any_value over the MAP itself was ~2.7x slower at 30k groups (docs/performance.md section 7).
    CAST(any_value(to_json(Tags)) AS MAP(VARCHAR, VARCHAR)) AS tags,
    -- "Until the report is final, the InvoiceId is blank" (AWS Data Exports, Bill columns).
    bool_or(InvoiceId IS NULL OR InvoiceId = '') AS is_estimated,
    getvariable('export_source') AS source,
    getvariable('ingested_at') AS ingested_at,
    any_value(BillingAccountName) AS billing_account_name,
    any_value(BillingAccountType) AS billing_account_type,
    any_value(SubAccountType) AS sub_account_type,
    any_value(RegionName) AS region_name,
    any_value(AvailabilityZone) AS availability_zone,
    max(nullif(InvoiceId, '')) AS invoice_id,
    any_value(InvoiceIssuerName) AS invoice_issuer_name,
    any_value(PublisherName) AS publisher_name,
    any_value(ServiceSubcategory) AS service_subcategory,
    ChargeClass AS charge_class,
    any_value(ChargeFrequency) AS charge_frequency,
    PricingCategory AS pricing_category,
    sum(CAST(PricingQuantity AS DOUBLE)) AS pricing_quantity,
    any_value(PricingUnit) AS pricing_unit,
    any_value(PricingCurrency) AS pricing_currency,
    any_value(CAST(ListUnitPrice AS DECIMAL(38, 10))) AS list_unit_price,
    any_value(CAST(ContractedUnitPrice AS DECIMAL(38, 10))) AS contracted_unit_price,
    sum(CAST(ContractedCost AS DECIMAL(38, 10))) AS contracted_cost,
    any_value(CAST(PricingCurrencyListUnitPrice AS DECIMAL(38, 10))) AS pricing_currency_list_unit_price,
    any_value(CAST(PricingCurrencyContractedUnitPrice AS DECIMAL(38, 10))) AS pricing_currency_contracted_unit_price,
    sum(CAST(PricingCurrencyEffectiveCost AS DECIMAL(38, 10))) AS pricing_currency_effective_cost,
    nullif(nullif(SkuPriceId, 'Unassigned'), '-2') AS sku_price_id,
    any_value(SkuMeter) AS sku_meter,
    any_value(CAST(SkuPriceDetails AS VARCHAR)) AS sku_price_details,
    CommitmentDiscountId AS commitment_discount_id,
    any_value(CommitmentDiscountType) AS commitment_discount_type,
    any_value(CommitmentDiscountCategory) AS commitment_discount_category,
    any_value(CommitmentDiscountName) AS commitment_discount_name,
    CommitmentDiscountStatus AS commitment_discount_status,
    sum(CAST(CommitmentDiscountQuantity AS DOUBLE)) AS commitment_discount_quantity,
    any_value(CommitmentDiscountUnit) AS commitment_discount_unit,
    CapacityReservationId AS capacity_reservation_id,
    CapacityReservationStatus AS capacity_reservation_status,
    -- Usage only: a month-long fee may come as one line in a daily or hourly export.
    max(epoch(ChargePeriodEnd) - epoch(ChargePeriodStart)) FILTER (WHERE ChargeCategory = 'Usage') AS x_charge_period_seconds
FROM export_rows
GROUP BY ALL
ORDER BY usage_date
