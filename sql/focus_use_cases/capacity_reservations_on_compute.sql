-- Analyze capacity reservations on compute costs
-- Source: https://focus.finops.org/use-case/analyze-capacity-reservations-on-compute-costs/
--   (FinOps Foundation, FOCUS use cases; FOCUS v1.1, v1.2)
-- Needs: CapacityReservationId, CapacityReservationStatus, ServiceCategory
-- Runs on focus_data_table (the runner names focus_cost_and_usage so); parameters are the `?` in
--   order.
-- Translated: nothing (DuckDB reads the published text as is).
SELECT CASE
           WHEN CapacityReservationId IS NOT NULL
                AND CapacityReservationStatus = 'Unused' THEN 'Unused Capacity Reservation'
           WHEN CapacityReservationId IS NOT NULL
                AND CapacityReservationStatus = 'Used' THEN 'Compute using Capacity Reservation'
           ELSE 'Compute without Capacity Reservation'
       END AS Status,
       ProviderName,
       BillingAccountId,
       SUM(BilledCost) AS TotalBilledCost,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  AND ChargePeriodEnd < ?
  AND ServiceCategory = 'Compute'
GROUP BY ProviderName,
         BillingAccountId,
         CapacityReservationId,
         CapacityReservationStatus
