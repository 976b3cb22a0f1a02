"""Cost Management through the real SDK and credential, answered at the HTTP layer."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from finops_pipeline.clouds.base import CloudApiError
from finops_pipeline.settings import SettingsError
from finops_pipeline.simulator.fleet import AZURE_SUBSCRIPTIONS
from finops_pipeline.warehouse.catalog import connect_lake
from finops_pipeline.warehouse.lake import Lake

from .conftest import COST_URL, refused_secret

SUB = AZURE_SUBSCRIPTIONS[0]
DAYS = (date(2026, 1, 5), date(2026, 1, 7))  # [start, end)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def test_cost_rows_equal_the_fleets_bill_per_resource_day_and_currency(arm, api, fleet, make_adapter):
    adapter = make_adapter()
    fetched = adapter.fetch_cost(*DAYS)

    got = {(r["usage_date"], r["resource_id"]): r for r in fetched.cost.to_pylist()}
    expected = [line for d in _days(*DAYS) for line in fleet.cost_lines("azure", d)]
    assert len(got) == len(expected) == fetched.cost.num_rows
    for line in expected:
        row = got[(line.usage_date, line.resource_id.lower())]
        assert row["billed_cost"] == line.billed_cost
        assert row["effective_cost"] == line.effective_cost
        assert row["billing_currency"] == line.currency
        assert row["sub_account_id"] == row["billing_account_id"] == line.sub_account_id
        assert row["service_name"] == line.service_name
        assert row["region"] == line.region
        assert row["charge_category"] == "Usage"
        assert row["usage_quantity"] == line.usage_quantity
        assert row["resource_type"] == fleet.by_id[line.resource_id].resource_type
        assert row["is_estimated"] is False and row["source"] == "costmanagement:query.usage"

    # The provider's own totals: per day and per currency, USD and EUR never summed together.
    for day in _days(*DAYS):
        assert fetched.provider_totals[day] == fleet.daily_total("azure", day)
        assert set(fetched.provider_totals[day]) == {"USD", "EUR"}
    assert fetched.days == _days(*DAYS)


def test_real_client_secret_flow_gets_a_token_and_arm_calls_carry_it(arm, make_adapter):
    make_adapter().fetch_cost(*DAYS)

    token_calls = [c for c in arm.calls if c.request.url.endswith("/oauth2/v2.0/token")]
    assert len(token_calls) == 1  # cached afterwards
    form = parse_qs(token_calls[0].request.body)
    assert form["grant_type"] == ["client_credentials"]
    assert form["scope"] == ["https://management.azure.com/.default"]
    issued = json.loads(token_calls[0].response.text)["access_token"]
    arm_calls = [c for c in arm.calls if "management.azure.com" in c.request.url]
    assert arm_calls and all(c.request.headers["Authorization"] == f"Bearer {issued}" for c in arm_calls)


def test_cost_query_follows_every_next_link_with_the_same_body(arm, api, fleet, make_adapter):
    # 5 resources in the subscription, 2 days: 10 rows, 3 a page -> 4 pages, 3 of them by nextLink.
    api.page_size = 3
    adapter = make_adapter()
    rows = list(adapter.query_cost(SUB, *DAYS, "ActualCost", ["ResourceId", "ServiceName"], charge_type="Usage"))

    cost_calls = [c for c in arm.calls if COST_URL.match(c.request.url)]
    next_link_calls = [c for c in cost_calls if "$skiptoken" in urlsplit(c.request.url).query]
    assert len(cost_calls) == 4 and len(next_link_calls) == 3
    assert len({c.request.body for c in cost_calls}) == 1  # every page POSTs the original query
    expected = [line for d in _days(*DAYS) for line in fleet.cost_lines("azure", d) if line.sub_account_id == SUB]
    assert len(rows) == len(expected) == 10
    assert sum(r["Cost"] for r in rows) == sum(line.billed_cost for line in expected)
    assert adapter.api.calls["costmanagement.query.usage.nextLink"] == len(next_link_calls)


def test_a_next_link_answered_204_no_content_ends_the_pages_and_keeps_the_rows(arm, api, fleet, make_adapter):
    # Query - Usage may answer 204 No Content (azure-rest-api-specs Query_Usage: 200 or 204); here the
    # last page's nextLink points past the rows and is answered so.
    api.page_size, api.link_past_end = 5, True
    adapter = make_adapter()
    rows = list(adapter.query_cost(SUB, *DAYS, "ActualCost", ["ResourceId", "ServiceName"], charge_type="Usage"))

    cost_calls = [c for c in arm.calls if COST_URL.match(c.request.url)]
    assert [c.response.status_code for c in cost_calls] == [200, 200, 204]
    expected = [line for d in _days(*DAYS) for line in fleet.cost_lines("azure", d) if line.sub_account_id == SUB]
    assert len(rows) == len(expected) == 10
    assert sum(r["Cost"] for r in rows) == sum(line.billed_cost for line in expected)


def test_a_query_with_no_rows_answered_204_lands_an_empty_day(arm, make_adapter):
    """A day the fleet never ran (before it existed) has no rows: Cost Management answers 204."""
    adapter = make_adapter()
    fetched = adapter.fetch_cost(date(2025, 1, 1), date(2025, 1, 2))
    assert {c.response.status_code for c in arm.calls if COST_URL.match(c.request.url)} == {204}
    assert fetched.cost.num_rows == 0 and fetched.days == [date(2025, 1, 1)] and fetched.provider_totals == {}


def test_columns_are_read_by_name_whatever_their_order(entra, make_adapter):
    entra.post(
        COST_URL,
        json={
            "properties": {
                "nextLink": None,
                "columns": [
                    {"name": "Currency", "type": "String"},
                    {"name": "ServiceName", "type": "String"},
                    {"name": "UsageDate", "type": "Number"},
                    {"name": "ResourceId", "type": "String"},
                    {"name": "UsageQuantity", "type": "Number"},
                    {"name": "Cost", "type": "Number"},
                ],
                "rows": [
                    [
                        "EUR",
                        "Storage",
                        20260105,
                        "/subscriptions/s/resourcegroups/rg/providers/microsoft.storage/storageaccounts/a",
                        24,
                        1.25,
                    ],
                    [
                        "USD",
                        "Storage",
                        20260105,
                        "/subscriptions/s/resourcegroups/rg/providers/microsoft.storage/storageaccounts/b",
                        2.5,
                        0.1,
                    ],
                ],
            }
        },
    )
    rows = list(make_adapter().query_cost(SUB, *DAYS, "ActualCost", ["ResourceId", "ServiceName"]))
    assert rows[0]["Currency"] == "EUR" and rows[0]["Cost"] == Decimal("1.25")
    assert rows[0]["UsageDate"] == date(2026, 1, 5) and rows[0]["UsageQuantity"] == 24.0
    assert rows[0]["ResourceId"].endswith("/storageaccounts/a") and rows[0]["ServiceName"] == "Storage"
    assert rows[1]["Currency"] == "USD" and rows[1]["Cost"] == Decimal("0.1")


def test_amortized_only_and_purchase_rows_keep_billed_and_effective_apart(entra, make_adapter):
    """A reservation purchase is billed (ActualCost) but not effective; its amortization is the reverse."""

    def answer(request):
        body = json.loads(request.body)
        grouping = [g["name"] for g in body["dataset"]["grouping"]]
        actual = body["type"] == "ActualCost"
        if grouping == ["ChargeType"]:
            rows = [[100.0, 20260105, "Purchase", "USD"]] if actual else [[3.0, 20260105, "Usage", "USD"]]
            cols = ["Cost", "UsageDate", "ChargeType", "Currency"]
        elif grouping == ["ResourceId", "ServiceName"]:
            charge = body["dataset"]["filter"]["dimensions"]["values"][0]
            rows = (
                [[100.0, 20260105, "", "Virtual Machines", "USD"]]
                if charge == "Purchase"
                else [
                    [
                        3.0,
                        20260105,
                        "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm1",
                        "Virtual Machines",
                        "USD",
                    ]
                ]
            )
            cols = ["Cost", "UsageDate", "ResourceId", "ServiceName", "Currency"]
        else:
            rows, cols = [], ["Cost", "UsageDate", "ResourceId", "ResourceLocation", "Currency"]
        return 200, {}, json.dumps({"properties": {"columns": [{"name": c} for c in cols], "rows": rows}})

    entra.add_callback(responses.POST, COST_URL, callback=answer, content_type="application/json")
    adapter = make_adapter(AZURE_SUBSCRIPTION_IDS=SUB)
    rows = {r["charge_category"]: r for r in adapter.fetch_cost(date(2026, 1, 5), date(2026, 1, 6)).cost.to_pylist()}
    assert rows["Purchase"]["billed_cost"] == Decimal(100) and rows["Purchase"]["effective_cost"] == 0
    assert rows["Purchase"]["resource_id"] is None
    assert rows["Usage"]["billed_cost"] == 0 and rows["Usage"]["effective_cost"] == Decimal(3)


def _throttled_then(api_callback, *throttles):
    """Answer with the given 429 headers first, then pass through."""
    pending = list(throttles)

    def answer(request):
        if pending:
            headers = pending.pop(0)
            return 429, headers, json.dumps({"error": {"code": "TooManyRequests", "message": "slow down"}})
        return api_callback(request)

    return answer


def test_cost_management_429_waits_for_the_longest_ratelimit_header(entra, cost_answer, make_adapter, waits):
    only_cost_headers = {  # no Retry-After at all: azure-core's retry policy would not see these
        "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": "12",
        "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after": "30",
        "x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after": "5",
        "x-ms-ratelimit-microsoft.costmanagement-qpu-remaining": "QueryResource=0",
    }
    entra.add_callback(
        responses.POST,
        COST_URL,
        callback=_throttled_then(cost_answer, only_cost_headers),
        content_type="application/json",
    )
    adapter = make_adapter()
    rows = list(adapter.query_cost(SUB, *DAYS, "ActualCost", ["ChargeType"]))
    assert rows and waits == [30.0]
    assert adapter.api.retries == 1
    assert adapter.api.as_metadata()["api_x-ms-ratelimit-microsoft.costmanagement-qpu-remaining"] == "QueryResource=98"


def test_429_waits_are_capped_by_the_setting(entra, cost_answer, make_adapter, waits):
    entra.add_callback(
        responses.POST,
        COST_URL,
        callback=_throttled_then(
            cost_answer, {"Retry-After": "600"}, {"x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": "45"}
        ),
        content_type="application/json",
    )
    list(make_adapter(AZURE_MAX_RETRY_WAIT_SECONDS="20").query_cost(SUB, *DAYS, "ActualCost", ["ChargeType"]))
    assert waits == [20.0, 20.0]


def test_5xx_is_retried_with_bounded_backoff_then_fails_naming_the_call(entra, make_adapter, waits):
    entra.post(COST_URL, status=503, json={"error": {"code": "ServiceUnavailable", "message": "try later"}})
    with pytest.raises(CloudApiError, match=r"azure costmanagement.query.usage failed: .*HTTP 503"):
        list(make_adapter().query_cost(SUB, *DAYS, "ActualCost", ["ChargeType"]))
    assert len(waits) == 4 and all(0 <= w <= 20 for w in waits)


def test_403_names_the_role_and_the_scope(entra, make_adapter):
    entra.post(
        COST_URL,
        status=403,
        json={
            "error": {
                "code": "AuthorizationFailed",
                "message": "The client does not have authorization to perform action 'Microsoft.CostManagement/query/read'",
            }
        },
    )
    with pytest.raises(CloudApiError) as raised:
        make_adapter().fetch_cost(*DAYS)
    message = str(raised.value)
    assert "Cost Management Reader" in message and f"/subscriptions/{SUB}" in message
    assert "HTTP 403" in message and "AuthorizationFailed" in message


def test_unknown_subscription_says_so(arm, make_adapter):
    adapter = make_adapter(AZURE_SUBSCRIPTION_IDS="11111111-2222-3333-4444-555555555555")
    with pytest.raises(CloudApiError, match=r"subscription '11111111-2222-3333-4444-555555555555' is unknown"):
        adapter.fetch_cost(*DAYS)


def test_no_subscription_names_both_variables_before_any_call(rsps, make_adapter):
    with pytest.raises(SettingsError) as info:
        make_adapter(AZURE_SUBSCRIPTION_IDS=" , ")
    assert str(info.value) == (
        "AZURE_SUBSCRIPTION_IDS='' is invalid: expected a comma list of subscription ids (or set AZURE_SUBSCRIPTION_ID)."
    )
    assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    "variables, read",
    [
        ({"AZURE_SUBSCRIPTION_IDS": "", "AZURE_SUBSCRIPTION_ID": SUB}, (SUB,)),
        ({"AZURE_SUBSCRIPTION_IDS": f"{SUB},{SUB.upper()}"}, (SUB,)),  # ARM ids ignore case: read once
        ({"AZURE_SUBSCRIPTION_IDS": AZURE_SUBSCRIPTIONS[1], "AZURE_SUBSCRIPTION_ID": SUB}, (AZURE_SUBSCRIPTIONS[1],)),
    ],
)
def test_the_subscriptions_read_come_from_the_settings(arm, make_adapter, variables, read):
    adapter = make_adapter(**variables)
    assert adapter.subscription_ids == read
    assert {r["sub_account_id"] for r in adapter.fetch_cost(*DAYS).cost.to_pylist()} == set(read)


def test_a_rejected_secret_fails_clearly_without_showing_it(rsps, api, credential, make_adapter):
    token_url = refused_secret(rsps)
    with pytest.raises(CloudApiError) as raised:
        make_adapter().fetch_cost(*DAYS)
    assert "AZURE_CLIENT_SECRET" in str(raised.value)
    assert "AADSTS7000215: Invalid client secret provided." in str(raised.value)  # Entra's answer, not a network error
    assert api.client_secret not in str(raised.value)
    assert [c.request.url for c in rsps.calls if c.request.method == "POST"] == [token_url]  # not retried


def test_totals_never_mix_currencies(arm, make_adapter, fleet):
    fetched = make_adapter().fetch_cost(*DAYS)
    by_currency = defaultdict(Decimal)
    for row in fetched.cost.to_pylist():
        by_currency[(row["usage_date"], row["billing_currency"])] += row["billed_cost"]
    assert fetched.provider_totals == {d: fleet.daily_total("azure", d) for d in _days(*DAYS)}
    assert by_currency == {(d, c): a for d, totals in fetched.provider_totals.items() for c, a in totals.items()}
    assert {c for _, c in by_currency} == {"EUR", "USD"}


def test_regions_are_arm_names_though_cost_management_answers_its_display_form(arm, make_adapter):
    adapter = make_adapter()
    answered = {
        r["ResourceLocation"] for r in adapter.query_cost(SUB, *DAYS, "ActualCost", ["ResourceId", "ResourceLocation"])
    }
    assert answered == {"US East", "EU West"}  # what the service says (Azure/azure-sdk-for-go#22599)

    rows = adapter.fetch_cost(*DAYS).cost.to_pylist()
    assert {r["region"] for r in rows} == {"eastus", "westeurope"}
    vm0 = next(r for r in rows if r["resource_id"].endswith("/virtualmachines/virtualmachine000"))
    assert vm0["region"] == "eastus"
    assert adapter.api.as_metadata()["api_unmapped_regions"] == "0"
    found = {ref.resource_id.rsplit("/", 1)[-1]: ref.region for ref in adapter.discover_resources(*DAYS)}
    assert found["virtualmachine000"] == "eastus" and found["virtualmachine002"] == "westeurope"


def test_an_unknown_location_is_kept_as_it_came_and_counted(entra, make_adapter):
    rid = "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm{}"
    locations = {rid.format(1): "US West 2", rid.format(2): "East US 2", rid.format(3): "Mars North"}

    def answer(request):
        body = json.loads(request.body)
        grouping = [g["name"] for g in body["dataset"]["grouping"]]
        if grouping == ["ChargeType"]:
            rows, cols = [[3.0, 20260105, "Usage", "USD"]], ["Cost", "UsageDate", "ChargeType", "Currency"]
        elif grouping == ["ResourceId", "ServiceName"]:
            rows = [[1.0, 20260105, r, "Virtual Machines", "USD"] for r in locations]
            cols = ["Cost", "UsageDate", "ResourceId", "ServiceName", "Currency"]
        else:
            rows = [[1.0, 20260105, r, where, "USD"] for r, where in locations.items()]
            cols = ["Cost", "UsageDate", "ResourceId", "ResourceLocation", "Currency"]
        return 200, {}, json.dumps({"properties": {"columns": [{"name": c} for c in cols], "rows": rows}})

    entra.add_callback(responses.POST, COST_URL, callback=answer, content_type="application/json")
    adapter = make_adapter(AZURE_SUBSCRIPTION_IDS=SUB)
    rows = adapter.fetch_cost(date(2026, 1, 5), date(2026, 1, 6)).cost.to_pylist()
    assert {r["resource_name"]: r["region"] for r in rows} == {"vm1": "westus2", "vm2": "eastus2", "vm3": "Mars North"}
    meta = adapter.api.as_metadata()
    assert meta["api_unmapped_regions"] == "1" and meta["api_unmapped_region_values"] == "Mars North"
    # Metrics ask Azure Monitor by ARM region; an unknown one is left for the per-resource call to say.
    refs = adapter.discover_resources(date(2026, 1, 5), date(2026, 1, 6))
    regions = {ref.resource_id[-3:]: ref.region for ref in refs}
    assert regions == {"vm1": "westus2", "vm2": "eastus2", "vm3": None}


def test_the_region_seed_is_a_catalog_view(tmp_path):
    con = connect_lake(Lake(tmp_path / "lake"))
    found = con.execute("select arm_name from azure_regions where display_name = 'EU West'").fetchone()
    assert found == ("westeurope",)


def test_daily_totals_are_one_ungrouped_query_per_subscription(arm, api, make_adapter):
    adapter = make_adapter()

    totals = adapter.daily_totals(*DAYS)

    assert totals == {
        date(2026, 1, 5): {"USD": Decimal("9.497690"), "EUR": Decimal("9.534180")},
        date(2026, 1, 6): {"USD": Decimal("9.468430"), "EUR": Decimal("9.531619")},
    }
    assert adapter.api.calls == {"costmanagement.query.usage": 2}


def test_arm_out_of_reach_is_retried_then_named(entra, make_adapter, waits):
    # No answer registered for Cost Management: every call fails to connect (azure-core's ServiceRequestError).
    with pytest.raises(CloudApiError) as raised:
        list(make_adapter().query_cost(SUB, *DAYS, "ActualCost", ["ChargeType"]))
    assert str(raised.value) == (
        "azure costmanagement.query.usage failed: could not reach Azure Resource Manager (ServiceRequestError) "
        "after 5 attempts; check network access to the ARM endpoint"
    )
    assert raised.value.retryable and len(waits) == 4


def test_a_5xx_without_a_json_body_is_reported_by_its_status(entra, make_adapter, waits):
    # What a proxy or gateway in front of ARM answers: an HTML page, no ARM error object.
    entra.post(
        COST_URL, status=502, body="<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"
    )
    with pytest.raises(CloudApiError) as raised:
        list(make_adapter().query_cost(SUB, *DAYS, "ActualCost", ["ChargeType"]))
    assert str(raised.value) == (
        f"azure costmanagement.query.usage failed: Azure kept failing (HTTP 502) at /subscriptions/{SUB} after 4 retries"
    )
    assert raised.value.retryable and len(waits) == 4


def test_a_subscription_of_an_unsupported_offer_fails_with_cost_managements_words(entra, make_adapter, waits):
    # "Troubleshoot common Cost Management errors": 400 SubscriptionTypeNotSupported for an offer it does not cover.
    entra.post(
        COST_URL,
        status=400,
        json={
            "error": {
                "code": "SubscriptionTypeNotSupported",
                "message": "Cost Management supports only Enterprise Agreement, Web direct and Microsoft Customer "
                "Agreement offer types.",
            }
        },
    )
    with pytest.raises(CloudApiError) as raised:
        list(make_adapter().query_cost(SUB, *DAYS, "ActualCost", ["ChargeType"]))
    assert str(raised.value) == (
        f"azure costmanagement.query.usage failed: HTTP 400 at /subscriptions/{SUB} (SubscriptionTypeNotSupported: "
        "Cost Management supports only Enterprise Agreement, Web direct and Microsoft Customer Agreement offer types.)"
    )
    assert not raised.value.retryable and waits == []


def test_a_token_from_another_tenant_says_to_check_the_tenant(entra, make_adapter):
    # ARM's 401 for a token whose issuer is not the subscription's tenant (azure-mgmt raises ClientAuthenticationError).
    entra.post(
        COST_URL,
        status=401,
        json={
            "error": {
                "code": "InvalidAuthenticationTokenTenant",
                "message": "The access token is from the wrong issuer 'https://sts.windows.net/"
                "11111111-1111-1111-1111-111111111111/'. It must match the tenant 'https://sts.windows.net/"
                "22222222-2222-2222-2222-222222222222/' associated with this subscription.",
            }
        },
    )
    with pytest.raises(CloudApiError) as raised:
        list(make_adapter().query_cost(SUB, *DAYS, "ActualCost", ["ChargeType"]))
    assert str(raised.value) == (
        f"azure costmanagement.query.usage failed: Azure rejected the token (HTTP 401) at scope /subscriptions/{SUB} "
        "(InvalidAuthenticationTokenTenant: The access token is from the wrong issuer 'https://sts.windows.net/"
        "11111111-1111-1111-1111-111111111111/'. It must match the tenant 'https://sts.windows.net/"
        "22222222-2222-2222-2222-222222222222/' associated with this subscription.); the token must come from the "
        "subscription's tenant and cloud: check AZURE_TENANT_ID and AZURE_RESOURCE_MANAGER_ENDPOINT"
    )


def test_a_retry_after_date_falls_back_to_backoff(entra, cost_answer, make_adapter, waits):
    # Retry-After may be an HTTP-date instead of seconds (RFC 9110, 10.2.3 Retry-After).
    entra.add_callback(
        responses.POST,
        COST_URL,
        callback=_throttled_then(cost_answer, {"Retry-After": "Tue, 03 Feb 2026 07:28:00 GMT"}),
        content_type="application/json",
    )
    rows = list(make_adapter().query_cost(SUB, *DAYS, "ActualCost", ["ChargeType"]))
    assert rows and len(waits) == 1 and 0 <= waits[0] <= 1.0  # the first backoff step: full jitter up to 1 s


def test_an_answer_without_a_cost_column_fails_naming_the_columns_it_had(entra, make_adapter):
    entra.post(
        COST_URL,
        json={
            "properties": {
                "nextLink": None,
                "columns": [{"name": "UsageDate", "type": "Number"}, {"name": "Currency", "type": "String"}],
                "rows": [[20260105, "USD"]],
            }
        },
    )
    with pytest.raises(CloudApiError) as raised:
        list(make_adapter().query_cost(SUB, *DAYS, "ActualCost", []))
    assert str(raised.value) == (
        f"azure costmanagement.query.usage failed: ActualCost answer for /subscriptions/{SUB} has no Cost column "
        "(columns: ['UsageDate', 'Currency'])"
    )


def test_misuse_of_the_adapter_fails_before_any_call(rsps, make_adapter):
    from finops_pipeline.clouds.azure.source import AzureSource

    with pytest.raises(CloudApiError, match="^azure configuration failed: give built clients or a credential$"):
        AzureSource([SUB])
    adapter = make_adapter()
    with pytest.raises(SettingsError) as raised:
        adapter.export_reader()
    assert str(raised.value).startswith("AZURE_COST_SOURCE='api' is invalid")
    with pytest.raises(ValueError, match=r"^empty cost window \[2026-01-07, 2026-01-07\): end must be after start$"):
        adapter.fetch_cost(DAYS[1], DAYS[1])
    with pytest.raises(ValueError, match="^Cost Management accepts at most two groupings per query$"):
        list(adapter.query_cost(SUB, *DAYS, "ActualCost", ["ResourceId", "ServiceName", "ChargeType"]))
    assert [c.request.url for c in rsps.calls] == []  # not even a token


class TestARangeOverAYear:
    """Cost Management refuses a query period over one year (observed, not documented: the double
    cites where); a longer backfill is asked in windows and still lands every day."""

    @pytest.fixture
    def api(self, fleet):
        from finops_pipeline.simulator.azure import AzureApi

        return AzureApi(fleet, date(2025, 1, 1), date(2026, 2, 5), page_size=100_000)

    @staticmethod
    def _query(first: str, last: str) -> dict:
        return {
            "type": "ActualCost",
            "timeframe": "Custom",
            "timePeriod": {"from": f"{first}T00:00:00+00:00", "to": f"{last}T23:59:59+00:00"},
            "dataset": {"granularity": "Daily", "aggregation": {"Cost": {"name": "Cost", "function": "Sum"}}},
        }

    def test_the_double_answers_a_period_over_a_year_with_azures_bad_request(self, api):
        assert api.cost_query(SUB, self._query("2025-01-01", "2025-12-31"), 0, "https://arm")[0] == 200
        assert api.cost_query(SUB, self._query("2025-01-01", "2026-01-01"), 0, "https://arm") == (
            400,
            {
                "error": {
                    "code": "BadRequest",
                    "message": "Invalid query definition: The time period for pulling the data cannot exceed 1 year(s)",
                }
            },
        )

    def test_a_backfill_over_a_year_is_asked_in_windows_and_lands_every_day(self, arm, fleet, make_adapter):
        fetched = make_adapter().fetch_cost(date(2025, 1, 1), date(2026, 2, 5))

        periods = {
            (body["timePeriod"]["from"][:10], body["timePeriod"]["to"][:10])
            for body in (json.loads(c.request.body) for c in arm.calls if COST_URL.match(c.request.url))
        }
        assert periods == {("2025-01-01", "2025-12-30"), ("2025-12-31", "2026-02-04")}
        assert fetched.days == _days(date(2025, 1, 1), date(2026, 2, 5))
        for day in (date(2025, 1, 1), date(2025, 12, 30), date(2025, 12, 31), date(2026, 2, 4)):
            assert fetched.provider_totals[day] == fleet.daily_total("azure", day)
        assert fetched.cost.num_rows == sum(len(fleet.cost_lines("azure", d)) for d in fetched.days)
