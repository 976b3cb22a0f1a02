"""`finops-pipeline doctor`: is each cloud configured, and does one cheap call per API work?

For every cloud: enabled or not and why, which settings and credentials were found
(names and non-secret identifiers only: a secret's value is never printed), then one
call per API with the exact fix when it fails. The calls cost at most one Cost Explorer
request ($0.01); the BigQuery query is a dry run (free), the others are free reads.
"""

from __future__ import annotations

from finops_pipeline.clouds.aws.doctor import check_aws
from finops_pipeline.clouds.azure.doctor import check_azure
from finops_pipeline.clouds.doctor import FAIL, INFO, Finding
from finops_pipeline.clouds.gcp.doctor import check_gcp
from finops_pipeline.settings import Settings

# -- the report --------------------------------------------------------------------------

CHECKS = {"aws": check_aws, "gcp": check_gcp, "azure": check_azure}


def run_doctor(settings: Settings, out=print) -> int:
    """Print the report; returns the number of failed checks for enabled clouds."""
    failures = 0
    if not any(settings.provider_enabled(p) for p in CHECKS):
        out(
            "no cloud is enabled: set AWS_USAGE_ENABLED, GCP_USAGE_ENABLED or AZURE_USAGE_ENABLED to true "
            "(and USAGE_INTEGRATION_ENABLED, default true)"
        )
        failures += 1
    out(
        f"warehouse: {settings.data_dir.resolve()} "
        f"(catalog {'present' if settings.catalog_path.exists() else 'not created yet'}"
        f"{f'; lake {settings.lake_uri}' if settings.lake_uri else ''})"
    )
    for name, items in settings.repeated_items:
        out(Finding(INFO, "settings", f"{name} repeats {', '.join(items)}; each is used once").line())
    for provider, check in CHECKS.items():
        reason = settings.disabled_reason(provider)
        if reason:
            out(f"{provider}: disabled ({reason})")
            continue
        out(f"{provider}: enabled")
        for finding in check(settings):
            out(finding.line())
            failures += finding.status == FAIL
    out("all checks passed" if not failures else f"{failures} problem(s) found; fixes above")
    return failures
