-- Identify unused capacity reservations
-- Source: https://focus.finops.org/use-case/identify-unused-capacity-reservations/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.1, v1.2)
-- Needs: CapacityReservationId, CapacityReservationStatus
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT ProviderName,
       BillingAccountId,
       CapacityReservationId,
       CapacityReservationStatus,
       SUM(BilledCost) AS TotalBilledCost,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  AND ChargePeriodEnd < ?
  AND CapacityReservationStatus = 'Unused'
GROUP BY ProviderName,
         BillingAccountId,
         CapacityReservationId,
         CapacityReservationStatus
