"""AWS Inferentia: compile with torch.neuron (Inf1) or torch_neuronx (Inf2/Trn1) where this machine can, else CPU.

Introduced in notebook 04. `detect()` says which backend this machine can use and why, in one line.
`trace_for_inferentia` compiles with that backend and returns the module plus a `TraceRecord` (backend, input
shapes, compile time, and the compiler options it applied or could not apply: never dropped silently).
The rest runs the same code everywhere: `require_shape` enforces Neuron's fixed-shape rule, `scatter_gather`
does what `torch.neuron.DataParallel` does (serially), `benchmark` measures the way AWS's NeuronPerf does.
Works on torch 1.13 / Python 3.10 (the Inf1 stack) as well as on the course's CPU stack.
"""

from __future__ import annotations

import concurrent.futures
import glob
import importlib
import importlib.metadata
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from helpers import accuracy, course, files, tracing
from helpers.timing.clock import Clock, percentile

NEURON_REPO = "https://pip.repos.neuron.amazonaws.com"
"""AWS's pip repository: the only source of the real torch-neuron and torch-neuronx."""
PLACEHOLDER_MARK = "WRONG PACKAGE"
"""PyPI's torch-neuron 1.0 and torch-neuronx 1.0 are placeholders whose import raises ImportError with this text."""
DEVICE_GLOB = "/dev/neuron*"

# backend -> (module to import, pip distribution, the trace call a reader would write)
BACKENDS = {
    "inf1": ("torch_neuron", "torch-neuron", "torch.neuron.trace"),
    "inf2": ("torch_neuronx", "torch-neuronx", "torch_neuronx.trace"),
    "cpu": ("torch", "torch", "torch.jit.trace (via helpers.tracing.trace)"),
}
OPTIONS: dict[str, frozenset[str]] = {
    # keywords of torch.neuron.trace / torch_neuronx.trace, from AWS's API reference pages
    "compiler_args": frozenset({"inf1", "inf2"}),
    "compiler_workdir": frozenset({"inf1", "inf2"}),
    "compiler_timeout": frozenset({"inf1"}),
    "dynamic_batch_size": frozenset({"inf1"}),
    "fallback": frozenset({"inf1"}),
    "minimum_segment_size": frozenset({"inf1"}),
    "single_fusion_ratio_threshold": frozenset({"inf1"}),
    "subgraph_builder_function": frozenset({"inf1"}),
    "optimizations": frozenset({"inf1"}),
    "separate_weights": frozenset({"inf1"}),
    "input_output_aliases": frozenset({"inf2"}),
    "partitioner_config": frozenset({"inf2"}),
    "inline_weights_to_neff": frozenset({"inf2"}),
    "cpu_backend": frozenset({"inf2"}),
    # torch.jit.trace keywords: torch.neuron.trace forwards them; helpers.tracing.trace takes check_inputs
    "check_inputs": frozenset({"inf1", "cpu"}),
    "strict": frozenset({"inf1"}),
}
"""Compiler option -> the backends whose trace function accepts it."""


class OptionNotApplied(UserWarning):
    """A compiler option was given that the chosen backend's trace function does not take."""


@dataclass(frozen=True)
class Detection:
    """Which backend this machine can use ("inf1", "inf2" or "cpu") and why, in one line."""

    backend: str
    reason: str
    devices: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.backend}: {self.reason}"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


def probe(module: str) -> tuple[str, str]:
    """Import `module`: ("present", ""), ("missing", ""), ("placeholder", message) or ("broken", message)."""
    try:
        importlib.import_module(module)
    except Exception as err:  # a broken Neuron install must be reported, not crash detection
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if PLACEHOLDER_MARK in message:
            return "placeholder", message
        if isinstance(err, ModuleNotFoundError) and err.name == module:
            return "missing", ""
        return "broken", f"{type(err).__name__}: {message}"
    return "present", ""


def detect(device_glob: str = DEVICE_GLOB) -> Detection:
    """The backend this machine can compile for *and run*: inf1, inf2, or cpu, with the reason in one line."""
    devices = tuple(sorted(glob.glob(device_glob)))
    found = {backend: probe(BACKENDS[backend][0]) for backend in ("inf1", "inf2")}
    for backend, (status, _) in found.items():
        module, dist, _call = BACKENDS[backend]
        if status == "present" and devices:
            return Detection(backend, f"{module} {_version(dist)} and Neuron device(s) {', '.join(devices)}", devices)
        if status == "present":
            return Detection("cpu", f"{module} {_version(dist)} is installed but there is no {device_glob} device: "
                             "it can compile here but not run, so tracing for CPU")
    for backend, (status, message) in found.items():
        module, dist = BACKENDS[backend][:2]
        if status == "placeholder":
            return Detection("cpu", f"{module} is PyPI's placeholder {dist} {_version(dist)} (import raises "
                             f"ImportError: {message}): pip uninstall {dist}, then install it from {NEURON_REPO}")
        if status == "broken":
            return Detection("cpu", f"{module} is installed but does not import ({message})")
    return Detection("cpu", "no Neuron package: neither torch_neuron (Inf1) nor torch_neuronx (Inf2/Trn1) is installed")


def _where(backends: Iterable[str]) -> str:
    return " and ".join(BACKENDS[b][2] for b in sorted(backends))


def split_options(backend: str, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(options `backend` takes, {option: why not} for the rest); TypeError for an option no backend knows."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unknown compiler option(s) {unknown}: torch.neuron.trace, torch_neuronx.trace and "
                        f"torch.jit.trace know {sorted(OPTIONS)} - check the spelling")
    applied = {name: value for name, value in options.items() if backend in OPTIONS[name]}
    skipped = {name: f"only {_where(OPTIONS[name])} take(s) it; not passed to {BACKENDS[backend][2]}"
               for name in options if name not in applied}
    return applied, skipped


@dataclass
class TraceRecord:
    """What `trace_for_inferentia` did: backend, input shapes, compile time, options applied and not applied."""

    backend: str
    function: str
    reason: str
    input_shapes: list[tuple[int, ...]]
    compile_seconds: float
    applied: dict[str, Any] = field(default_factory=dict)
    not_applied: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        shapes = ", ".join(map(tracing.shape_label, self.input_shapes))
        lines = [
            f"backend      {self.backend}: {self.function}",
            f"why          {self.reason}",
            f"input shapes {shapes}",
            f"compile time {self.compile_seconds:.2f} s",
            f"applied      {', '.join(f'{k}={v!r}' for k, v in self.applied.items()) or 'no options'}",
        ]
        lines += [f"NOT applied  {name}: {why}" for name, why in self.not_applied.items()]
        return "\n".join(lines)


def _compile(backend: str, model: torch.nn.Module, example: tuple[torch.Tensor, ...], options: dict[str, Any]):
    """Run the backend's trace function. The Neuron branches run only where `detect()` found the package."""
    if backend == "cpu":
        return tracing.trace(model, example, **options)
    if backend == "inf1":
        importlib.import_module("torch_neuron")  # registers torch.neuron
        with course.known_noise():
            return torch.neuron.trace(model, example, **options)
    if backend == "inf2":
        torch_neuronx = importlib.import_module("torch_neuronx")
        with course.known_noise():
            return torch_neuronx.trace(model, example, **options)
    raise ValueError(f"backend {backend!r} is not one of {sorted(BACKENDS)}")


def trace_for_inferentia(
    model: torch.nn.Module,
    example_inputs: tracing.Inputs | torch.Tensor,
    *,
    detection: Detection | None = None,
    **compiler_options: Any,
) -> tuple[torch.jit.ScriptModule, TraceRecord]:
    """torch.neuron.trace on Inf1, torch_neuronx.trace on Inf2/Trn1, else torch.jit.trace: (module, record).

    Options the chosen backend does not take are listed in `record.not_applied` and raise an
    `OptionNotApplied` warning; an option no backend knows raises TypeError.
    """
    detection = detection or detect()
    example = tracing.as_tuple(example_inputs)
    applied, skipped = split_options(detection.backend, compiler_options)
    for name, why in skipped.items():
        warnings.warn(f"{name} not applied on {detection.backend}: {why}", OptionNotApplied, stacklevel=2)
    model.eval()
    start = time.perf_counter()
    module = _compile(detection.backend, model, example, applied)
    seconds = time.perf_counter() - start
    shapes = [tuple(t.shape) for t in example]
    record = TraceRecord(detection.backend, BACKENDS[detection.backend][2], detection.reason, shapes, seconds,
                         applied, skipped)
    return module, record


def require_shape(record: TraceRecord, inputs: tracing.Inputs | torch.Tensor) -> None:
    """Neuron's fixed-shape rule, enforced on every backend: ValueError unless `inputs` match the compiled shapes.

    With `dynamic_batch_size=True` (Inf1) only the batch dimension may differ.
    """
    got = [tuple(t.shape) for t in tracing.as_tuple(inputs)]
    dynamic = bool(record.applied.get("dynamic_batch_size"))
    same = len(got) == len(record.input_shapes) and all(
        (g[1:] == w[1:] and len(g) == len(w)) if dynamic else g == w for g, w in zip(got, record.input_shapes))
    if not same:
        raise ValueError(f"inputs have shape {', '.join(map(tracing.shape_label, got))} but the module was "
                         f"compiled for {', '.join(map(tracing.shape_label, record.input_shapes))} - pad to the "
                         "compiled shape (helpers.shapes.BucketedModel) or compile one more shape")


def load(path: str, detection: Detection) -> files.TracedModel:
    """`files.load` after importing the backend's package: Neuron modules need its ops registered first."""
    if detection.backend != "cpu":
        importlib.import_module(BACKENDS[detection.backend][0])
    return files.load(path)


def operator_counts(traced: torch.jit.ScriptModule) -> Counter:
    """How often each aten operator occurs in a traced graph: what analyze_model checks against Neuron's list."""
    return Counter(node.kind() for node in traced.inlined_graph.nodes() if node.kind().startswith("aten::"))


def scatter_gather(module: Callable, inputs: tracing.Inputs, parts: int) -> Any:
    """What DataParallel does, run serially: split dim 0 into `parts` chunks, run each, concatenate outputs."""
    example = tracing.as_tuple(inputs)
    batch = example[0].shape[0]
    if batch % parts:
        raise ValueError(f"batch {batch} does not split into {parts} equal parts - use a batch that is a multiple "
                         f"of {parts} (DataParallel without dynamic batching needs batch = parts x compiled batch)")
    chunks = zip(*(t.chunk(parts, dim=0) for t in example))
    with torch.no_grad():
        outputs = [accuracy.flat_tensors(module(*chunk)) for chunk in chunks]
    return tuple(torch.cat(pieces, dim=0) for pieces in zip(*outputs))


@dataclass
class Throughput:
    """A NeuronPerf-style result: inferences/s over a fixed duration, latency per call at p50 and p99."""

    inferences_per_s: float
    p50_ms: float
    p99_ms: float
    calls: int
    batch_size: int
    workers: int
    seconds: float

    def __str__(self) -> str:
        return (f"{self.inferences_per_s:.1f} inferences/s, latency p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} "
                f"ms ({self.calls} calls of batch {self.batch_size}, {self.workers} worker(s), {self.seconds:.1f} s)")


def _calls_until(module: Callable, example: tuple, deadline: float, clock: Clock) -> list[float]:
    """One worker: call `module(*example)` at least once, then until `deadline`; the latency of each call."""
    latencies = []
    with torch.inference_mode():
        while True:
            start = clock()
            module(*example)
            latencies.append(clock() - start)
            if clock() >= deadline:
                return latencies


def benchmark(module: Callable, inputs: tracing.Inputs, workers: int = 2, duration: float = 3.0,
              warmup: int = 2, clock: Clock = time.perf_counter) -> Throughput:
    """Call `module(*inputs)` from `workers` threads for `duration` seconds, as NeuronPerf does per model.

    Throughput counts inferences (batch x calls); latency is per call. 2 workers per model is NeuronPerf's
    throughput setting, 1 its latency setting. A call that raises in any worker is raised here.
    """
    if workers < 1 or duration <= 0:
        raise ValueError(f"need workers >= 1 and duration > 0 s, got workers={workers}, duration={duration}")
    example = tracing.as_tuple(inputs)
    with torch.inference_mode():
        for _ in range(warmup):
            module(*example)
    start = clock()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        jobs = [pool.submit(_calls_until, module, example, start + duration, clock) for _ in range(workers)]
        latencies = [t for job in jobs for t in job.result()]  # result() re-raises a worker's exception
    elapsed = clock() - start
    batch = example[0].shape[0]
    return Throughput(len(latencies) * batch / elapsed, percentile(latencies, 50) * 1e3,
                      percentile(latencies, 99) * 1e3, len(latencies), batch, workers, elapsed)
