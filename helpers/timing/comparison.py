"""Comparing ways to run one model: interleaved timing, accuracy beside every speed, and fallback guards.

Introduced in notebook 05 (notebook 02 times its padding policies with it too). `compare` times candidates in
turn (A B C A B C ...), so a noisy neighbour hurts all of them alike and the ratios stay honest; it keeps
set-up and first-call (compile) time apart from steady-state latency, measures each candidate's accuracy
against the baseline (sentence-embedding cosine and max abs diff) and flags a "compiled" candidate whose model
Python code still runs. Its clock is a parameter, so tests check the arithmetic with a fake one.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from helpers import accuracy, models
from helpers.timing.clock import Clock, Timing, summarize


@dataclass
class Candidate:
    """One way to run the model: `fn(*inputs)` returns the model outputs (first tensor: B x T x H)."""

    fn: Callable[..., Any]
    inputs: tuple | None = None  # None: use compare's inputs
    setup_s: float = 0.0  # build time (trace, export, compile ahead of time), measured by the builder
    watch: torch.nn.Module | None = None  # eager model whose Python forward must NOT run (compiled paths)
    note: str = ""

    @property
    def samples(self) -> int:
        """Sentences per call: the batch size of the first input (1 for inputs without a batch)."""
        first = self.inputs[0] if self.inputs else None
        return int(first.shape[0]) if isinstance(first, torch.Tensor) and first.dim() > 1 else 1


@dataclass
class Row:
    """One candidate's result: steady-state timing, set-up cost, accuracy and guard status."""

    name: str
    timing: Timing
    samples: int
    setup_s: float
    first_call_s: float
    speedup: float = 1.0  # per sample, vs the baseline
    cosine: float | None = None  # lowest sentence-embedding cosine vs the baseline
    max_abs_diff: float | None = None  # largest |difference| of the hidden states (real tokens only)
    status: str = "ok"
    note: str = ""

    @property
    def per_sample_ms(self) -> float:
        return self.timing.median * 1e3 / self.samples

    def record(self) -> dict[str, Any]:
        """JSON-ready data for benchmark results."""
        return {
            "name": self.name, "samples": self.samples, "median_ms": self.timing.median * 1e3,
            "p10_ms": self.timing.p10 * 1e3, "p90_ms": self.timing.p90 * 1e3, "per_sample_ms": self.per_sample_ms,
            "speedup": self.speedup, "setup_s": self.setup_s, "first_call_s": self.first_call_s,
            "cosine": self.cosine, "max_abs_diff": self.max_abs_diff, "status": self.status, "note": self.note,
            "threads": self.timing.threads, "runs_ms": [t * 1e3 for t in self.timing.runs],
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Row:
        """A Row back from `record()` data (e.g. a benchmark's committed JSON)."""
        runs = [t / 1e3 for t in rec["runs_ms"]]
        timing = Timing(rec["median_ms"] / 1e3, rec["p10_ms"] / 1e3, rec["p90_ms"] / 1e3, runs, rec["threads"])
        return cls(rec["name"], timing, rec["samples"], rec["setup_s"], rec["first_call_s"], rec["speedup"],
                   rec["cosine"], rec["max_abs_diff"], rec["status"], rec["note"])


@dataclass
class Comparison:
    """Rows in the order given; the first row (or the named one) is the baseline."""

    rows: list[Row]
    baseline: str
    _by_name: dict[str, Row] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {row.name: row for row in self.rows}

    @classmethod
    def from_records(cls, records: list[dict[str, Any]], baseline: str) -> Comparison:
        return cls([Row.from_record(rec) for rec in records], baseline)

    def records(self) -> list[dict[str, Any]]:
        return [row.record() for row in self.rows]

    def __getitem__(self, name: str) -> Row:
        return self._by_name[name]

    def paired_ratio(self, name: str, baseline: str | None = None) -> float:
        """Median over rounds of (`name`'s seconds / the baseline's seconds in the same round): rounds are
        interleaved, so each pair shared the machine's state and the ratio is steadier than one of medians."""
        base = self[baseline or self.baseline].timing.runs
        return statistics.median(a / b for a, b in zip(self[name].timing.runs, base))

    def best(self, min_cosine: float = accuracy.MIN_COSINE, skip: tuple[str, ...] = ()) -> Row:
        """The fastest row per sample that passed the guard, kept cosine >= `min_cosine` and whose name
        does not start with any prefix in `skip` (e.g. a peer engine measured for reference)."""
        fair = [r for r in self.rows if r.status == "ok" and (r.cosine is None or r.cosine >= min_cosine)
                and not any(r.name.startswith(prefix) for prefix in skip)]
        if not fair:
            raise ValueError(f"no candidate passed the guard with cosine >= {min_cosine}: relax it or fix a path")
        return max(fair, key=lambda r: r.speedup)

    def table(self, timings: bool = True) -> str:
        """A text table; `timings=False` leaves out every timed column (for a stable, checked printout)."""
        head = f"{'path':<28} {'cosine':>8} {'max|diff|':>9}  status"
        if timings:
            timed_head = f"{'ms/call':>8} {'ms/sample':>9} {'speedup':>7} {'setup s':>7} {'1st call s':>10} "
            head = f"{'path':<28} " + timed_head + head[29:]
        lines = [head]
        for r in self.rows:
            acc = f"{r.cosine:8.5f} {r.max_abs_diff:9.1e}" if r.cosine is not None else f"{'-':>8} {'-':>9}"
            timed = (f"{r.timing.median * 1e3:8.2f} {r.per_sample_ms:9.2f} {r.speedup:6.2f}x "
                     f"{r.setup_s:7.1f} {r.first_call_s:10.2f} ")
            lines.append(f"{r.name:<28} " + (timed if timings else "") + f"{acc}  {r.status}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _as_torch(outputs: Any) -> Any:
    """ONNX Runtime and OpenVINO return NumPy arrays: make them tensors so every path compares alike."""
    if isinstance(outputs, (list, tuple)):
        return [torch.as_tensor(o) if not isinstance(o, torch.Tensor) else o for o in outputs]
    return outputs


def run_chunks(candidate: Candidate, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `inputs` (input_ids, attention_mask, ...) through a candidate in chunks of its batch size.

    Returns (hidden states N x T x H, embeddings N x H), float32.
    """
    hidden, embeds = [], []
    with torch.inference_mode():
        for chunk in zip(*(t.split(candidate.samples) for t in inputs)):
            out = _as_torch(candidate.fn(*chunk))
            hidden.append(accuracy.flat_tensors(out)[0].float())
            # N x H mean-pooled, as sentence-transformers does
            embeds.append(models.mean_pool(accuracy.flat_tensors(out)[0].float(), chunk[1]))
    return torch.cat(hidden), torch.cat(embeds)


def embedding_accuracy(candidate: Candidate, reference: tuple[torch.Tensor, torch.Tensor],
                       inputs: Sequence[torch.Tensor]) -> tuple[float, float]:
    """(lowest cosine of sentence embeddings, max |diff| of hidden states on real tokens) vs `reference`."""
    hidden, embeds = run_chunks(candidate, inputs)
    cosine = accuracy.cosines(embeds, reference[1]).min().item()
    real = inputs[1].bool()  # N x T: ignore padding positions, whose values no one reads
    return cosine, (hidden - reference[0]).abs()[real].max().item()


def python_calls(fn: Callable[..., Any], inputs: Sequence[Any], watch: torch.nn.Module) -> int:
    """How many times the Python `forward` of `watch`'s submodules ran during one `fn(*inputs)` call.

    A real compiled path runs none; a path that silently fell back to eager runs them all.
    """
    codes = {type(m).forward.__code__ for m in watch.modules() if m is not watch}
    hits = 0

    def profiler(frame, event, arg):  # noqa: ARG001 - sys.setprofile's signature
        nonlocal hits
        if event == "call" and frame.f_code in codes:
            hits += 1

    sys.setprofile(profiler)
    try:
        with torch.inference_mode():
            fn(*inputs)
    finally:
        sys.setprofile(None)
    return hits


def dynamo_compiles() -> int:
    """Frames dynamo has tried to compile so far in this process (grows on every (re)compile)."""
    from torch._dynamo.utils import counters

    return sum(counters["frames"].values())


def guard(candidate: Candidate, inputs: Sequence[Any]) -> str:
    """'ok', or why a compiled candidate must not be reported as compiled."""
    if candidate.watch is None:
        return "ok"
    calls = python_calls(candidate.fn, inputs, candidate.watch)
    return "ok" if calls == 0 else f"FELL BACK TO EAGER ({calls} Python module calls)"


def _first_calls(cands: dict[str, Candidate], inputs: tuple, warmup: int, clock: Clock) -> dict[str, float]:
    """Time each candidate's first call (lazy compilation lands here), then warm it up."""
    first = {}
    with torch.inference_mode():
        for name, cand in cands.items():
            args = cand.inputs if cand.inputs is not None else inputs
            start = clock()
            cand.fn(*args)
            first[name] = clock() - start
            for _ in range(warmup):
                cand.fn(*args)
    return first


def _interleaved(cands: dict[str, Candidate], inputs: tuple, repeat: int, progress: bool,
                 pause: float, clock: Clock) -> tuple[dict[str, list[float]], set[str]]:
    """A B C A B C ...: one timed call of each candidate per round, `repeat` rounds, `pause` s apart.

    Returns the per-call seconds and the names of candidates during whose calls dynamo compiled.
    """
    runs: dict[str, list[float]] = {name: [] for name in cands}
    recompiled = set()
    with torch.inference_mode():
        for _ in tqdm(range(repeat), desc="timing", disable=not progress, leave=False):
            for name, cand in cands.items():
                args = cand.inputs if cand.inputs is not None else inputs
                compiles = dynamo_compiles()
                if pause:
                    time.sleep(pause)  # let the previous engine's idle threads stop spinning on our cores
                start = clock()
                cand.fn(*args)
                runs[name].append(clock() - start)
                if dynamo_compiles() != compiles:
                    recompiled.add(name)
    return runs, recompiled


def compare(
    candidates: Mapping[str, Callable[..., Any] | Candidate],
    inputs: tuple = (),
    *,
    baseline: str | None = None,
    accuracy_inputs: Sequence[torch.Tensor] | None = None,
    warmup: int = 3,
    repeat: int = 20,
    progress: bool = True,
    pause: float = 0.0,
    clock: Clock = time.perf_counter,
) -> Comparison:
    """Time candidates interleaved and put accuracy and guard status beside each speed.

    `inputs` go to every candidate without its own; `accuracy_inputs` (input_ids, attention_mask: N x T)
    are run through each candidate in chunks of its batch size and compared with the baseline
    (default: the first candidate). `pause` seconds between calls stop one runtime's idle-spinning threads
    (OpenMP, ONNX Runtime, OpenVINO) from slowing the next candidate. A candidate that (re)compiles while
    timed, or whose watched model's Python code runs, gets a status other than "ok" and is left out of
    `Comparison.best`.
    """
    cands = {k: v if isinstance(v, Candidate) else Candidate(v) for k, v in candidates.items()}
    if not cands:
        raise ValueError("compare needs at least one candidate: pass {name: fn}")
    baseline = baseline or next(iter(cands))
    if baseline not in cands:
        raise ValueError(f"baseline {baseline!r} is not a candidate; choose one of {list(cands)}")
    first = _first_calls(cands, inputs, warmup, clock)
    runs, recompiled = _interleaved(cands, inputs, repeat, progress, pause, clock)
    rows = [Row(n, summarize(runs[n]), c.samples, c.setup_s, first[n], note=c.note) for n, c in cands.items()]
    base = rows[list(cands).index(baseline)]
    reference = run_chunks(cands[baseline], accuracy_inputs) if accuracy_inputs is not None else None
    for row, cand in zip(rows, cands.values()):
        row.speedup = base.per_sample_ms / row.per_sample_ms
        row.status = guard(cand, cand.inputs if cand.inputs is not None else inputs)
        if row.name in recompiled and row.status == "ok":
            row.status = "RECOMPILED WHILE TIMED"
        if reference is not None:
            row.cosine, row.max_abs_diff = embedding_accuracy(cand, reference, accuracy_inputs)
    return Comparison(rows, baseline)
