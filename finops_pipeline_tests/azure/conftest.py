"""Azure at the HTTP layer with `responses`: the public-cloud URLs (Entra ID and ARM),
answered by the simulator's AzureApi for the fleet, through the real SDK clients and
the real ClientSecretCredential token flow."""

from __future__ import annotations

import json
import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from azure.identity import ClientSecretCredential

from finops_pipeline.clouds.azure.source import AzureSource
from finops_pipeline.settings import get_settings
from finops_pipeline.simulator.azure import CLIENT_ID, TENANT_ID, AzureApi
from finops_pipeline.simulator.fleet import AZURE_SUBSCRIPTIONS

LOGIN = "https://login.microsoftonline.com"
ARM = "https://management.azure.com"
COST_URL = re.compile(
    r"https://management\.azure\.com/+subscriptions/[^/]+/providers/Microsoft\.CostManagement/query.*"
)
METRICS_URL = re.compile(
    r"https://management\.azure\.com/subscriptions/.+/providers/Microsoft\.Insights/metrics.*", re.IGNORECASE
)


@pytest.fixture
def api(fleet):
    return AzureApi(fleet, date(2026, 1, 1), date(2026, 1, 20), page_size=40)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def instance_discovery(rsps) -> None:
    """MSAL's instance discovery, which it calls after a refused token request: unanswered, the
    credential's HTTP retries sleep ~5 s. Body as documented in "Custom authority aliases" (MSAL
    .NET docs: preferred_network, preferred_cache, aliases of the public cloud)."""
    rsps.get(
        re.compile(rf"{re.escape(LOGIN)}/common/discovery/instance\?.*"),
        json={
            "tenant_discovery_endpoint": f"{LOGIN}/common/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [
                {
                    "preferred_network": "login.microsoftonline.com",
                    "preferred_cache": "login.windows.net",
                    "aliases": [
                        "login.microsoftonline.com",
                        "login.windows.net",
                        "login.microsoft.com",
                        "sts.windows.net",
                    ],
                }
            ],
        },
    )


@pytest.fixture
def entra(rsps, api):
    """The Entra ID endpoints ClientSecretCredential uses: OpenID discovery and the token POST."""
    base = f"{LOGIN}/{TENANT_ID}"
    instance_discovery(rsps)
    rsps.get(
        f"{base}/v2.0/.well-known/openid-configuration",
        json={
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"https://login.microsoftonline.com/{TENANT_ID}/v2.0",
        },
    )

    def token(request):
        status, body = api.issue_token({k: v[0] for k, v in parse_qs(request.body).items()})
        return status, {}, json.dumps(body)

    rsps.add_callback(responses.POST, f"{base}/oauth2/v2.0/token", callback=token, content_type="application/json")
    return rsps


def refused_secret(rsps) -> str:
    """Entra ID refusing the client secret (HTTP 401 invalid_client, AADSTS7000215), with the OpenID
    discovery before it; returns the token URL the credential posts to."""
    base = f"{LOGIN}/{TENANT_ID}"
    rsps.get(
        f"{base}/v2.0/.well-known/openid-configuration",
        json={
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"{base}/v2.0",
        },
    )
    rsps.post(
        f"{base}/oauth2/v2.0/token",
        status=401,
        json={"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."},
    )
    instance_discovery(rsps)
    return f"{base}/oauth2/v2.0/token"


def authorized(api, request) -> bool:
    return api.authorized(request.headers.get("Authorization"))


def cost_callback(api):
    """Cost Management query answered from the fleet, nextLinks pointing back at ARM."""

    def answer(request):
        if not authorized(api, request):
            return 401, {}, json.dumps({"error": {"code": "AuthenticationFailed", "message": "no token"}})
        parts = urlsplit(request.url)
        query = parse_qs(parts.query)
        sub = parts.path.strip("/").split("/")[1]
        skip = int(query.get("$skiptoken", ["0"])[0])
        next_base = f"{ARM}{parts.path}?api-version={query['api-version'][0]}"
        status, body = api.cost_query(sub, json.loads(request.body), skip, next_base)
        text = json.dumps(body) if body is not None else ""
        return status, {"x-ms-ratelimit-microsoft.costmanagement-qpu-remaining": "QueryResource=98"}, text

    return answer


def metrics_callback(api):
    """Monitor metrics, GET (URL as sent) or POST (subscription scope, parameters in the body)."""

    def answer(request):
        if not authorized(api, request):
            return 401, {}, json.dumps({"error": {"code": "AuthenticationFailed", "message": "no token"}})
        if request.method == "POST":
            status, body = api.metrics_post(request.url, request.body or b"")
        else:
            status, body = api.metrics_get(request.url)
        return status, {"x-ms-ratelimit-remaining-subscription-reads": "11998"}, json.dumps(body)

    return answer


@pytest.fixture
def cost_answer(api):
    return cost_callback(api)


@pytest.fixture
def metrics_answer(api):
    return metrics_callback(api)


@pytest.fixture
def arm(entra, cost_answer, metrics_answer):
    """ARM answered from the fleet (cost and metrics)."""
    entra.add_callback(responses.POST, COST_URL, callback=cost_answer, content_type="application/json")
    for method in (responses.GET, responses.POST):
        entra.add_callback(method, METRICS_URL, callback=metrics_answer, content_type="application/json")
    return entra


@pytest.fixture
def credential(api):
    return ClientSecretCredential(TENANT_ID, CLIENT_ID, api.client_secret)


@pytest.fixture
def waits():
    return []


@pytest.fixture
def make_adapter(credential, waits):
    """An adapter built from settings (the fleet's subscriptions unless ``variables`` say
    otherwise) on the real SDK clients (public-cloud URLs), its sleeps recorded, not slept.
    Pacing is off unless a test turns it on (FINOPS_PACING_ENABLED, its quota logs under
    FINOPS_DATA_DIR/pacing): a quota's hold sleeps for real."""

    def make(**variables: str) -> AzureSource:
        defaults = {"AZURE_SUBSCRIPTION_IDS": ",".join(AZURE_SUBSCRIPTIONS), "FINOPS_PACING_ENABLED": "false"}
        settings = get_settings(overrides={**defaults, **variables})
        return AzureSource.from_settings(settings, credential=credential, sleep=waits.append)

    return make
