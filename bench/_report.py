"""What every benchmark shares for reporting: the machine, percentiles, and its own section
of docs/benchmarks.md (replaced on each run, the other sections left alone)."""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Each benchmark is a script in `bench/` that measures its own baseline in the same run, so the
ratio holds even on a noisy shared machine. `make bench` (or `.venv/bin/python bench/run_all.py`)
runs them all; each one replaces only its own section below. See `bench/README.md`.
"""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()} "
        f"({platform.system()} {platform.release()}), load average {load_average()} at start"
    )


def load_average() -> str:
    """The 1-minute load average: other work on a shared machine shows up here."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _order(key: str) -> tuple[int, str]:
    digits = "".join(ch for ch in key if ch.isdigit())
    return (int(digits) if digits else 1_000_000, key)


def write_section(key: str, body: str) -> None:
    """Replace (or add) the section between this benchmark's markers; sections stay in
    benchmark order (b1, b3, b5, ...) whichever ran last. Text outside sections is kept."""
    text = DOC.read_text() if DOC.exists() else HEADER
    section = re.compile(r"<!-- bench:(\S+) start -->\n.*?<!-- bench:\1 end -->\n?", re.DOTALL)
    blocks = {m.group(1): m.group(0).rstrip("\n") for m in section.finditer(text)}
    first = section.search(text)
    head = text[: first.start()] if first else text
    tail = section.sub("", text[first.start() :]) if first else ""
    blocks[key] = f"<!-- bench:{key} start -->\n{body.strip()}\n<!-- bench:{key} end -->"
    ordered = "\n\n".join(blocks[k] for k in sorted(blocks, key=_order))
    text = head.rstrip("\n") + "\n\n" + ordered + "\n"
    if tail.strip():
        text += "\n" + tail.strip("\n") + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
