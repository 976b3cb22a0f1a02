"""All simulated clouds at once: the doubles for the demo, `make ui` and end-to-end tests."""

from __future__ import annotations

import importlib
import logging
from contextlib import ExitStack, contextmanager
from datetime import date
from typing import Iterator

from finops_pipeline.simulator.fleet import Fleet, build_fleet

PROVIDERS = ("aws", "gcp", "azure")


def available_providers() -> list[str]:
    """Clouds whose simulator module exists (each ships with its adapter)."""
    found = []
    for provider in PROVIDERS:
        try:
            module = importlib.import_module(f"finops_pipeline.simulator.{provider}")
        except ModuleNotFoundError:
            continue
        if hasattr(module, f"serve_{provider}"):
            found.append(provider)
    return found


@contextmanager
def simulated_clouds(
    start: date, end: date, fleet: Fleet | None = None, providers: tuple[str, ...] | None = None
) -> Iterator[dict[str, str]]:
    """Start every cloud's doubles for [start, end) on 127.0.0.1.

    Yields the environment variables that point the real SDKs at them and enable the
    clouds; put them in the environment of any process that should use them.
    """
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    fleet = fleet or build_fleet()
    env: dict[str, str] = {}
    with ExitStack() as stack:
        for provider in providers or available_providers():
            module = importlib.import_module(f"finops_pipeline.simulator.{provider}")
            serve = getattr(module, f"serve_{provider}")
            env.update(stack.enter_context(serve(fleet, start, end)))
        yield env
