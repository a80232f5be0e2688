"""Benchmark results, kept per machine: `benchmarks/results/<machine>/<name>.json`, each with its provenance.

Introduced in notebooks 02 and 05. A run writes only into its own machine's folder, and moves that machine's
previous results aside (renamed with their timestamp) rather than overwriting them, so results measured on
another machine are never touched. The results folder is the checkout's `benchmarks/results` (found from the
current folder) or the environment variable COURSE_RESULTS.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from helpers import course
from helpers.timing.clock import cpu_name
from helpers.timing.hardware import cpu_class

SETTING = "COURSE_RESULTS"


def results_dir() -> Path:
    """The folder that holds one subfolder of results per machine."""
    return course.locate("benchmarks/results", SETTING)


def machine_slug(name: str | None = None, cls: str | None = None) -> str:
    """A folder name for this machine: vendor and family of the CPU, then its class, e.g. 'amd-epyc-avx512-bf16'."""
    words = re.sub(r"\((r|tm)\)|processor|cpu|@.*|\d+-core", " ", (name or cpu_name()).lower()).split()
    words = [re.sub(r"[^a-z0-9]+", "", w) for w in words if re.sub(r"[^a-z0-9]+", "", w)]
    return "-".join(words[:2] + [cls or cpu_class()]) or "unknown-cpu"


def keep_previous(json_path: Path, *others: Path) -> None:
    """Never lose earlier results: move `json_path` (and its companions, e.g. a PNG) aside, renamed with the
    timestamp of the run that measured them (plus a counter if that name is taken), before a new run writes."""
    if not json_path.exists():
        return
    stamp = json.loads(json_path.read_text()).get("provenance", {}).get("timestamp", "earlier")
    suffix, count = stamp, 1
    while any(p.with_name(f"{p.stem}.{suffix}{p.suffix}").exists() for p in (json_path, *others)):
        count += 1
        suffix = f"{stamp}-{count}"
    for path in (json_path, *others):
        if path.exists():
            kept = path.with_name(f"{path.stem}.{suffix}{path.suffix}")
            path.rename(kept)
            print(f"kept the previous {path.name} as {kept.name}")


def write(name: str, result: dict[str, Any], folder: Path | None = None) -> Path:
    """Write `result` as `<name>.json` in this machine's folder, after keeping the previous one; return the path."""
    folder = folder or results_dir() / machine_slug()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    keep_previous(path, path.with_suffix(".png"))
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path


def read_all(name: str) -> dict[str, dict[str, Any]]:
    """Every machine's `<name>.json`: {machine folder: result}, in folder order; empty if none exist yet."""
    return {path.parent.name: json.loads(path.read_text())
            for path in sorted(results_dir().glob(f"*/{name}.json"))}
