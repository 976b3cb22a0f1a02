"""What the three clouds' doctor checks share: a finding (one report line) and a guarded API call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from finops_pipeline.clouds.base import CloudApiError
from finops_pipeline.settings import SettingsError

OK, FAIL, SKIP, INFO = "ok", "FAIL", "skip", "info"


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    status: str  # ok | FAIL | skip | info
    what: str
    detail: str = ""

    def line(self) -> str:
        return f"  {self.status:<5}{self.what}" + (f": {self.detail}" if self.detail else "")


def attempt(what: str, call: Callable[[], str], explain: Callable[[Exception], str | None]) -> Finding:
    """Run one API check; a failure becomes a FAIL line with the fix, never a traceback."""
    try:
        return Finding(OK, what, call())
    except (CloudApiError, SettingsError) as exc:
        return Finding(FAIL, what, str(exc))
    except Exception as exc:  # noqa: BLE001 - every failure is reported, with the fix where known
        reason = explain(exc)
        if reason is None:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        return Finding(FAIL, what, reason)


def missing_sdk(package: str) -> Finding:
    return Finding(FAIL, "SDK", f"{package} is not installed: pip install -e . (or pip install {package})")
