"""The course's fastest accurate path against the best peer engine, per machine, worded honestly.

Introduced in notebook 05; `benchmarks/backends.py` writes the README's per-machine lines with it. `match` reads
one machine's `backends.json` (either layout: the current one, where the course's paths and the peers ran in
separate processes linked by the same eager fp32 row, or the older one, everything in one process) into a
`Match` per batch size; `Match.verdict` says "ahead by", "tie within noise" or "behind by ..., bounded by" the
GEMM kernel that bounds the course's path, with its achieved GFLOP/s against that kernel's measured peak.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from helpers import accuracy
from helpers.timing.clock import percentile

PEERS = ("openvino", "onnxruntime")
"""Name prefixes of the rows that are peer engines, not paths the course teaches."""
MIN_NOISE = 0.03
"""Ratios closer than this are never called a win: two processes' runs drift apart by about this much."""
QUIET_LOAD = 1.0
"""A run that starts at or above this load average shares its cores: no headline is drawn from it."""


@dataclass
class Side:
    """One row of a match: its name, per-sample ms, per-round ratios to its process's eager fp32 row, cosine."""

    name: str
    per_sample_ms: float
    ratios: list[float]
    cosine: float
    gflops: float | None = None  # achieved: encoder FLOPs / median seconds, in its own process

    @property
    def ratio(self) -> float:
        """Median per-sample time relative to eager fp32 at batch 1 in the same process (lower is faster)."""
        return statistics.median(self.ratios)

    def relative_error(self) -> float:
        """Standard error of the median ratio, relative: about 0.93 x interquartile range / sqrt(rounds)."""
        spread = (percentile(self.ratios, 75) - percentile(self.ratios, 25)) / self.ratio
        return 0.93 * spread / len(self.ratios) ** 0.5


def word(gap: float, noise: float) -> str:
    """'ahead by 1.15x', 'tie within noise (±4%)' or 'behind by 1.20x'. `gap` = course time / peer time."""
    if abs(gap - 1) <= noise:
        return f"tie within noise (±{noise:.0%})"
    return f"ahead by {1 / gap:.2f}x" if gap < 1 else f"behind by {gap:.2f}x"


def kernel(name: str) -> tuple[str, tuple[str, ...]]:
    """(the GEMM kernel a course path's Linear layers run on, peak keys to read it from, new and older layout)."""
    if "int8" in name:
        return "int8 GEMM (fbgemm/oneDNN)", ()
    if "bf16" in name:
        return "oneDNN's bf16 GEMM", ("bf16 oneDNN", "bf16")
    if "oneDNN" in name:
        return "oneDNN's fp32 GEMM", ("fp32 oneDNN",)
    return "MKL's fp32 GEMM", ("fp32 MKL", "fp32")


@dataclass
class Match:
    """The course's fastest accurate row against the best peer row at one batch size, on one machine."""

    batch: int
    course: Side
    peer: Side | None
    peaks: dict[str, float]

    @property
    def gap(self) -> float | None:
        """Course time / peer time per sample (> 1: the course's path is slower)."""
        return self.course.ratio / self.peer.ratio if self.peer else None

    @property
    def noise(self) -> float:
        """Twice the combined standard error of the two ratios, at least `MIN_NOISE`."""
        errors = [s.relative_error() for s in (self.course, self.peer) if s]
        return max(MIN_NOISE, 2 * sum(e * e for e in errors) ** 0.5)

    def bound(self) -> str:
        """What bounds the course's path: its GEMM kernel, achieved vs measured peak GFLOP/s, the peer's beside."""
        label, keys = kernel(self.course.name)
        peak = next((self.peaks[k] for k in keys if k in self.peaks), None)
        if self.course.gflops is None or peak is None:
            return f"bounded by {label}"
        # the peer's rate on the same clock: its process's own eager row can run at another speed
        peer = f"; the peer: {self.course.gflops * self.gap:.0f} GFLOP/s" if self.peer else ""
        return (f"bounded by {label}: {self.course.gflops:.0f} GFLOP/s of its measured {peak:.0f} peak "
                f"({self.course.gflops / peak:.0%}){peer}")

    def verdict(self) -> str:
        if self.peer is None:
            return "no peer row to compare with"
        said = word(self.gap, self.noise)
        return f"{said}, {self.bound()}" if said.startswith("behind") else said


def _side(row: dict[str, Any], reference: dict[str, Any], flops: float | None) -> Side:
    ratios = [r / row["samples"] / b for r, b in zip(row["runs_ms"], reference["runs_ms"])]
    gflops = flops * row["samples"] / (row["median_ms"] / 1e3) / 1e9 if flops else None
    return Side(OLDER_NAMES.get(row["name"], row["name"]), row["per_sample_ms"], ratios, row["cosine"], gflops)


def _best(rows: list[dict[str, Any]], peers: bool, reference: str, min_cosine: float) -> dict[str, Any] | None:
    fair = [r for r in rows if r["status"] == "ok" and r["cosine"] is not None and r["cosine"] >= min_cosine
            and r["name"].startswith(PEERS) == peers and r["name"] != reference]
    return min(fair, key=lambda r: r["per_sample_ms"]) if fair else None


def _older_flops(mini: dict[str, Any]) -> float | None:
    """FLOPs per sentence from an older result, which stored achieved GFLOP/s per batch-1 row instead."""
    eager = next((r for r in mini["batch1"] if r["name"] == "eager fp32"), None)
    if eager is None or "eager fp32" not in mini.get("gflops", {}):
        return None
    return mini["gflops"]["eager fp32"] * 1e9 * eager["median_ms"] / 1e3


def match(result: dict[str, Any], batch: int, min_cosine: float = accuracy.MIN_COSINE) -> Match | None:
    """The match at batch 1 or 8 in one machine's backends.json (None if that batch was not measured)."""
    mini, key = result["minilm"], f"batch{batch}"
    if key not in mini:
        return None
    reference = {1: "eager fp32", 8: "eager fp32 b1"}[batch]
    course_rows, peer_rows = mini[key], mini.get("peers", {}).get(key, mini[key])
    course, peer = _best(course_rows, False, reference, min_cosine), _best(peer_rows, True, reference, min_cosine)
    if course is None:
        return None
    ref_c = next(r for r in course_rows if r["name"] == reference)
    ref_p = next(r for r in peer_rows if r["name"] == reference)
    flops = mini.get("flops_per_sentence") or _older_flops(mini)
    return Match(batch, _side(course, ref_c, flops), _side(peer, ref_p, flops) if peer else None,
                 result.get("peaks_gflops", {}))


def quiet(result: dict[str, Any]) -> bool:
    """Whether the run started on a quiet machine (load average below `QUIET_LOAD`)."""
    return result["provenance"].get("load_average_before", [0.0])[0] < QUIET_LOAD


def line(folder: str, result: dict[str, Any]) -> str:
    """One machine's headline, as the README lists it: machine, date, command, fastest accurate path, best peer,
    verdict at batch 1 x 128 and per sample at batch 8."""
    prov = result["provenance"]
    load = prov.get("load_average_before", [float("nan")])[0]
    head = (f"- `{folder}`: {prov['machine']}, {prov['date']}, `{prov['command']}`, {prov['threads']} threads, "
            f"load {load:.1f}")
    parts = []
    for batch in (1, 8):
        found = match(result, batch)
        if found is None:
            continue
        ours = f"{found.course.name} {1 / found.course.ratio:.2f}x eager fp32{' b1' if batch == 8 else ''}"
        peer = f"{found.peer.name} {1 / found.peer.ratio:.2f}x" if found.peer else "no peer row"
        said = found.verdict() if quiet(result) else "no verdict: measured under load"
        parts.append(f"batch {batch}{' x 128' if batch == 1 else ', per sample'}: {ours}; best peer {peer}: {said}")
    older = "" if "peers" in result["minilm"] else " (older benchmark: one process, peers at default settings)"
    return f"{head}{older}. " + "; ".join(parts) + "."


OLDER_NAMES = {"jit.trace": "jit.trace fp32", "jit.trace+freeze": "jit.trace+freeze fp32",
               "optimize_for_inference": "optimize_for_inference fp32",
               "bf16 jit.trace+freeze": "jit.trace+freeze bf16",
               "openvino fp32": "openvino f32 latency", "openvino bf16": "openvino bf16 latency",
               "bf16 jit.trace+freeze b8": "jit.trace+freeze bf16 b8", "openvino bf16 b8": "openvino bf16 latency b8"}
"""Row names of the older benchmark, under the names the current one gives the same path (OpenVINO then ran
with dynamic shapes and the LATENCY hint, as the current 'latency' rows do)."""


def speedups(result: dict[str, Any], batch: int) -> dict[str, tuple[float, float]]:
    """{row name: (per-sample speedup vs eager fp32 at batch 1 in its process, cosine)}, course and peer rows."""
    mini, key = result["minilm"], f"batch{batch}"
    rows = mini.get(key, []) + [r for r in mini.get("peers", {}).get(key, []) if not r["name"].startswith("eager")]
    return {OLDER_NAMES.get(r["name"], r["name"]): (r["speedup"], r["cosine"]) for r in rows}


def side_by_side(results: dict[str, dict[str, Any]], batch: int, names: list[str]) -> str:
    """A table of per-sample speedups vs eager fp32 (batch 1), one column per machine; '*' marks a cosine
    below the 0.999 bar, '-' a path that machine's benchmark did not run."""
    found = {folder: speedups(result, batch) for folder, result in results.items()}
    width = max(len(n) for n in names) + 1
    lines = [f"{'path':<{width}}" + "".join(f"{folder[:24]:>26}" for folder in found)]
    for name in names:
        cells = [found[folder].get(name) for folder in found]
        lines.append(f"{name:<{width}}" + "".join(
            f"{'-':>26}" if c is None else f"{c[0]:>24.2f}x" + ("*" if c[1] < accuracy.MIN_COSINE else " ")
            for c in cells))
    return "\n".join(lines)
