"""Timing done properly: warm-up, repeats, median and spread, and the machine it ran on.

Every timed number in the course comes from `measure` (or `compare`, which interleaves several), either live
in a notebook or in a script under `benchmarks/` whose JSON results carry `provenance()`. The clock is a
parameter, so tests check the arithmetic with a fake one instead of asserting on real sleeps.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class Timing:
    """Seconds per call: median and 10th/90th percentiles over `runs` timed calls."""

    median: float
    p10: float
    p90: float
    runs: list[float] = field(repr=False)
    threads: int = 1

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: how noisy the measurement was."""
        return (self.p90 - self.p10) / self.median if self.median else 0.0

    def __str__(self) -> str:
        return f"{self.median * 1e3:.2f} ms (p10 {self.p10 * 1e3:.2f}, p90 {self.p90 * 1e3:.2f}, n={len(self.runs)})"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, linearly interpolated."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(runs: list[float]) -> Timing:
    """A Timing from raw per-call seconds."""
    if not runs:
        raise ValueError("no timed runs: pass repeat >= 1")
    return Timing(statistics.median(runs), percentile(runs, 10), percentile(runs, 90), runs, torch.get_num_threads())


Clock = Callable[[], float]


def measure(fn: Callable[[], Any], warmup: int = 3, repeat: int = 20, clock: Clock = time.perf_counter) -> Timing:
    """Call `fn` `warmup` times untimed, then `repeat` times timed by `clock`, under `torch.inference_mode`."""
    runs = []
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        for _ in range(repeat):
            start = clock()
            fn()
            runs.append(clock() - start)
    return summarize(runs)


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """'2 cores, AMD EPYC, Linux x86_64': written beside every measured number."""
    return f"{os.cpu_count()} cores, {cpu_name()}, {platform.system()} {platform.machine()}"


def provenance(command: str) -> dict[str, Any]:
    """Where, when and how a result was measured: goes into every benchmark's JSON."""
    return {
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "date": dt.date.today().isoformat(),
        "timestamp": dt.datetime.now().strftime("%Y%m%dT%H%M%S"),
        "command": command,
        "torch": torch.__version__,
    }


def as_dict(timing: Timing) -> dict[str, Any]:
    """A Timing as JSON-ready data, with the derived spread."""
    return {**asdict(timing), "spread": timing.spread}
