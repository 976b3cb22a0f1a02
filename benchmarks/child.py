"""Run a measured step in a fresh child process and read its peak RSS from the OS.

A spawned (not forked) child starts from an empty interpreter, so its peak resident set
(``getrusage(RUSAGE_SELF).ru_maxrss``, read in the child when the step returns) is the
step's own memory plus imports and setup, never the parent's. The step reports the RSS it
had after setup (``setup_rss_bytes``) so the two can be told apart.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import resource
import sys
import traceback
from typing import Any

_SPAWN = mp.get_context("spawn")


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far, in bytes (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _entry(conn, target: str, kwargs: dict) -> None:
    try:
        module, name = target.rsplit(":", 1)
        result = getattr(importlib.import_module(module), name)(**kwargs)
        result["peak_rss_bytes"] = peak_rss_bytes()
        conn.send(("ok", result))
    except BaseException:  # noqa: BLE001 - the parent re-raises with the child's traceback
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class ChildFailed(RuntimeError):
    """A measured step raised in its child process; the message carries its traceback."""


def start_child(target: str, **kwargs: Any):
    """Start ``module:function(**kwargs)`` in a spawned process; pass the handle to :func:`result_of`."""
    parent, child = _SPAWN.Pipe(duplex=False)
    process = _SPAWN.Process(target=_entry, args=(child, target, kwargs))
    process.start()
    child.close()
    return target, process, parent


def result_of(handle) -> dict:
    """Wait for a started child; its result dict with ``peak_rss_bytes`` added."""
    target, process, conn = handle
    try:
        status, payload = conn.recv()
    except EOFError:
        process.join()
        raise ChildFailed(f"{target} died without a result (exit code {process.exitcode})") from None
    process.join()
    if status != "ok":
        raise ChildFailed(f"{target} failed in its child process:\n{payload}")
    return payload


def run_in_child(target: str, **kwargs: Any) -> dict:
    """Call ``module:function(**kwargs)`` in a spawned process; returns its dict + peak_rss_bytes."""
    return result_of(start_child(target, **kwargs))
