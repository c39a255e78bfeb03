"""Run every benchmark (bench/b*_*.py), one process each, and update docs/benchmarks.md.

Each benchmark is its own process so that one's sockets, memory and event loop never
colour the next one's figures. Extra arguments are passed to every benchmark (for example
--no-write). Exits non-zero if any benchmark crashed; a missed target is reported in the
figures, not as a failure.

Usage: .venv/bin/python bench/run_all.py [--only b1 b3] [--no-write]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def benchmarks() -> list[Path]:
    return sorted(BENCH_DIR.glob("b[0-9]*_*.py"), key=lambda p: int(p.name[1:].split("_")[0]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="KEY", help="e.g. b1 b3")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    args = parser.parse_args()

    chosen = [
        path
        for path in benchmarks()
        if not args.only or path.name.split("_")[0] in {key.lower() for key in args.only}
    ]
    if not chosen:
        parser.error("no benchmark matches --only")
    failed: list[str] = []
    for path in chosen:
        print(f"\n=== {path.name} ===", flush=True)
        started = time.monotonic()
        command = [sys.executable, str(path), *(["--no-write"] if args.no_write else [])]
        code = subprocess.call(command, cwd=BENCH_DIR.parent)
        print(f"=== {path.name}: exit {code} after {time.monotonic() - started:.0f} s ===")
        if code != 0:
            failed.append(path.name)
    if failed:
        print(f"\nFailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if not args.no_write:
        print("\nResults written to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
