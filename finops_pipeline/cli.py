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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finops-pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="build the demo warehouse from the simulated clouds")
    demo.add_argument("--data-dir", default="data/demo", help="where the demo warehouse goes (default data/demo)")
    demo.add_argument("--days", type=int, default=30, help="how many UTC days up to yesterday (default 30)")
    demo.set_defaults(run=_demo)
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
