"""The `finops-pipeline` command.

Errors end the command with a non-zero exit and one clear line; `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from finops_pipeline.demo import run_demo

    run_demo(Path(args.data_dir), days=args.days)
    return 0


def _ui(args: argparse.Namespace) -> int:
    import os
    import subprocess
    from datetime import date, timedelta

    from finops_pipeline.simulator.clouds import simulated_clouds

    data_dir = Path(args.data_dir).resolve()
    home = data_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    end = date.today()
    with simulated_clouds(end - timedelta(days=args.days), end) as env:
        env.update({"FINOPS_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(home)})
        print(f"Simulated clouds up; Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C to stop)")
        command = ["dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(args.port)]
        process = subprocess.Popen(command, env={**os.environ, **env})
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.terminate()
            return process.wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finops-pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="build the demo warehouse from the simulated clouds")
    demo.add_argument("--data-dir", default="data/demo", help="where the demo warehouse goes (default data/demo)")
    demo.add_argument("--days", type=int, default=30, help="how many UTC days up to yesterday (default 30)")
    demo.set_defaults(run=_demo)

    ui = commands.add_parser("ui", help="dagster dev over a warehouse, with the simulated clouds serving")
    ui.add_argument("--data-dir", default="data/demo")
    ui.add_argument("--days", type=int, default=30, help="days the simulated clouds serve (default 30)")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(run=_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line for operators; --debug for engineers
        if args.debug:
            raise
        print(f"finops-pipeline {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
