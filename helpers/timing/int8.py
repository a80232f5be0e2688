"""Why dynamic int8 loses a BERT's accuracy, measured: one error source at a time, one group of layers at a time.

Introduced in notebook 05; `benchmarks/backends.py` records the full per-layer table for each machine.
`quantize_dynamic` (torch.ao) stores each Linear's weights as int8 with ONE scale per tensor, and quantises each
call's input activations with one scale per tensor over 7 bits (x86's engine reserves a bit against overflow).
`simulated` rounds weights and activations to such grids in fp32, one source at a time, so each source's cost
is measured alone; `alone` quantises (for real) one group of Linear layers at a time; `input_outliers` shows
why some layers suffer: a few huge activation values stretch the scale, leaving the rest few levels.
Accuracy is always the lowest cosine of mean-pooled sentence embeddings vs fp32, one sentence per call (as a
server sees them: a per-tensor activation scale depends on what shares the batch).
"""

from __future__ import annotations

import contextlib
import copy
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

from helpers import accuracy
from helpers.timing.comparison import Candidate, run_chunks

Checks = tuple[torch.Tensor, torch.Tensor]  # input_ids, attention_mask: N x T

ERROR_SOURCES = {
    "weights int8, one scale per tensor (quantize_dynamic)": ("tensor", None),
    "weights int8, one scale per output channel": ("channel", None),
    "activations 7-bit, one scale per tensor (quantize_dynamic on x86)": (None, "tensor7"),
    "activations 8-bit, one scale per tensor": (None, "tensor8"),
    "activations 8-bit, one scale per token": (None, "token8"),
}
"""Each single source of int8 error: (weight grid, activation grid) as `simulated` takes them."""


def fake_quant(x: torch.Tensor, bits: int, dim: int | None = None, symmetric: bool = True) -> torch.Tensor:
    """`x` rounded to a `bits`-bit integer grid and back: one scale for the tensor (`dim=None`) or one per slice
    along `dim`; symmetric around 0 (weights) or asymmetric with 0 exactly on the grid (activations)."""
    if dim is None:
        low, high = x.min(), x.max()
    else:
        other = [d for d in range(x.dim()) if d != dim % x.dim()]
        low, high = x.amin(dim=other, keepdim=True), x.amax(dim=other, keepdim=True)
    if symmetric:
        scale = torch.maximum(high.abs(), low.abs()).clamp_min(1e-12) / (2 ** (bits - 1) - 1)
        return (x / scale).round().clamp(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) * scale
    low, high = low.clamp_max(0), high.clamp_min(0)
    scale = (high - low).clamp_min(1e-12) / (2**bits - 1)
    zero = (-low / scale).round()
    return ((x / scale).round() + zero).clamp(0, 2**bits - 1).sub(zero) * scale


def linear_names(model: torch.nn.Module) -> list[str]:
    """Names of the model's nn.Linear layers, in order (what quantize_dynamic replaces)."""
    return [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]


def _activation_hook(grid: str) -> Callable:
    """A forward pre-hook that rounds a Linear's input: "tensor8"/"tensor7" (one scale), "token8" (one per token)."""
    bits = 7 if grid == "tensor7" else 8

    def hook(module, args):
        x = args[0]
        if grid == "token8":
            return (fake_quant(x.reshape(-1, x.shape[-1]), bits, 0, symmetric=False).reshape(x.shape),)
        return (fake_quant(x, bits, None, symmetric=False),)
    return hook


@contextlib.contextmanager
def simulated(model: torch.nn.Module, weights: str | None, activations: str | None,
              skip: Sequence[str] = ()) -> Iterator[torch.nn.Module]:
    """Inside the block, every nn.Linear of `model` (except those named in `skip`) computes in fp32 on int8-rounded
    `weights` ("tensor" or "channel" scales) and/or int8-rounded `activations` ("tensor8", "tensor7", "token8")."""
    saved, hooks = {}, []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or name in skip:
            continue
        if weights:
            saved[name] = module.weight.data
            module.weight.data = fake_quant(module.weight.data, 8, None if weights == "tensor" else 0)
        if activations:
            hooks.append(module.register_forward_pre_hook(_activation_hook(activations)))
    try:
        yield model
    finally:
        for hook in hooks:
            hook.remove()
        for name, module in model.named_modules():
            if name in saved:
                module.weight.data = saved[name]


def quantized(model: torch.nn.Module, keep: Sequence[str] = (), per_channel: bool = False) -> torch.nn.Module:
    """`torch.ao.quantization.quantize_dynamic` on a copy of `model`: every nn.Linear except those named in `keep`
    gets int8 weights (one scale per tensor, or per output channel) and int8 activations per call."""
    qconfig = (torch.ao.quantization.per_channel_dynamic_qconfig if per_channel
               else torch.ao.quantization.default_dynamic_qconfig)
    spec = {name: qconfig for name in linear_names(model) if name not in keep}
    with warnings.catch_warnings():  # torch.ao.quantization's deprecation notice, and one per quantised tensor
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor", category=UserWarning)
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), spec, dtype=torch.qint8)


def embeddings(fn: Callable, checks: Checks) -> torch.Tensor:
    """Mean-pooled sentence embeddings of `checks`, one sentence per call: N x hidden, float32."""
    return run_chunks(Candidate(fn), checks)[1]  # a Candidate without inputs takes one sentence per call


def lowest_cosine(fn: Callable, checks: Checks, reference: torch.Tensor) -> float:
    """The lowest cosine between `fn`'s sentence embeddings and `reference` (from `embeddings(model, checks)`)."""
    return accuracy.cosines(embeddings(fn, checks), reference).min().item()


def error_sources(model: torch.nn.Module, checks: Checks, reference: torch.Tensor,
                  sources: Mapping[str, tuple[str | None, str | None]] = ERROR_SOURCES) -> dict[str, float]:
    """{source: lowest cosine with only that int8 error simulated on every Linear}."""
    found = {}
    for label, (weights, activations) in sources.items():
        with simulated(model, weights, activations):
            found[label] = lowest_cosine(model, checks, reference)
    return found


def families(names: Sequence[str]) -> dict[str, list[str]]:
    """Linear layers grouped by role across the encoder's layers: 'encoder.layer.*.output.dense': [6 names]."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(re.sub(r"\.\d+\.", ".*.", name), []).append(name)
    return groups


def alone(model: torch.nn.Module, checks: Checks, reference: torch.Tensor,
          groups: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """{group: lowest cosine when only that group's Linear layers are quantised (real quantize_dynamic)}."""
    every = linear_names(model)
    return {label: lowest_cosine(quantized(model, keep=[n for n in every if n not in names]), checks, reference)
            for label, names in groups.items()}


def input_outliers(model: torch.nn.Module, checks: Checks) -> dict[str, dict[str, float]]:
    """Per Linear: the largest |input| and the 99.9th percentile of |input| over `checks` (padding included, as
    a per-tensor scale sees it), and their ratio: how far a few outliers stretch a per-tensor scale."""
    stats: dict[str, dict[str, float]] = {}

    def hook(name):
        def record(module, args):
            x = args[0].detach().abs().flatten().float()
            seen = stats.setdefault(name, {"max": 0.0, "p99.9": 0.0})
            seen["max"] = max(seen["max"], x.max().item())
            seen["p99.9"] = max(seen["p99.9"], x.kthvalue(max(1, int(0.999 * x.numel()))).values.item())
        return record
    hooks = [m.register_forward_pre_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    try:
        embeddings(model, checks)
    finally:
        for handle in hooks:
            handle.remove()
    return {name: {**s, "outlier_factor": s["max"] / max(s["p99.9"], 1e-12)} for name, s in stats.items()}


def fp32_needed(model: torch.nn.Module, checks: Checks, reference: torch.Tensor, ranked: Sequence[str],
                target: float = accuracy.MIN_COSINE, per_channel: bool = False) -> tuple[int, float]:
    """Keep the first k of `ranked` (most sensitive first) in fp32 and quantise the rest, k = 0, 1, ...: the
    smallest k whose lowest cosine reaches `target`, and that cosine (k = len(ranked) if none does)."""
    cosine = 0.0
    for k in range(len(ranked) + 1):
        cosine = lowest_cosine(quantized(model, keep=ranked[:k], per_channel=per_channel), checks, reference)
        if cosine >= target:
            return k, cosine
    return len(ranked), cosine
