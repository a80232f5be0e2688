"""How close is close enough: the course's one statement of tolerances, and the comparisons built on it.

Introduced in notebook 02. Two runs of the same float32 model agree only to rounding: a different batch size,
thread count or instruction set (AVX2, AVX-512, ARM) changes the order of the sums inside each matmul, and the
last bits move. Measured on MiniLM (outputs up to ~6 in magnitude): 0 to 3e-5 between CPUs and kernel sets,
about 1e-5 between batch splits on an Intel Xeon. A real bug (a frozen length, a padding leak, a wrong input
order) moves outputs by 1e-2 to 1. So a check allows `atol + rtol * scale`, where scale is the largest magnitude
of the reference output: float32 allows 1e-4 of the scale (30x the noise, 100x below a bug); bf16 keeps 8 bits
of precision (7 stored), so its rounding step is 2**-8 = 0.4% and it allows 2% of the scale.
Exact equality is asked for only where it is guaranteed: the same module, the same kernels, the same process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

MIN_COSINE = 0.999
"""Sentence embeddings of a faster path must keep cosine >= this with fp32 eager (notebook 05)."""


@dataclass(frozen=True)
class Tolerance:
    """Allowed |actual - expected|: `atol + rtol * scale`, scale = the largest |expected| value."""

    atol: float
    rtol: float

    def limit(self, scale: float) -> float:
        return self.atol + self.rtol * scale

    def __str__(self) -> str:
        return f"{self.atol:.0e} + {self.rtol:.0e} x scale"


TOLERANCES: dict[torch.dtype, Tolerance] = {
    torch.float32: Tolerance(atol=1e-5, rtol=1e-4),
    torch.bfloat16: Tolerance(atol=1e-3, rtol=2e-2),
    torch.float16: Tolerance(atol=1e-4, rtol=2e-3),
}


def tolerance_for(dtype: torch.dtype) -> Tolerance:
    """The default tolerance for outputs of `dtype` (float32's for anything not listed, e.g. float64)."""
    return TOLERANCES.get(dtype, TOLERANCES[torch.float32])


def flat_tensors(outputs: Any) -> list[torch.Tensor]:
    """All tensors in a model output (tensor, tuple, list, dict or ModelOutput), in order."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, Mapping):
        outputs = list(outputs.values())
    if isinstance(outputs, (tuple, list)):
        return [t for item in outputs for t in flat_tensors(item)]
    return []


def _pairs(actual: Any, expected: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    left, right = flat_tensors(actual), flat_tensors(expected)
    if len(left) != len(right):
        raise ValueError(f"outputs differ in structure: {len(left)} tensors vs {len(right)}")
    for x, y in zip(left, right):
        if x.shape != y.shape:
            raise ValueError(f"outputs differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    return list(zip(left, right))


def max_abs_diff(actual: Any, expected: Any) -> float:
    """Largest absolute difference between two model outputs of the same structure."""
    diffs = [(x.float() - y.float()).abs().max().item() for x, y in _pairs(actual, expected) if x.numel()]
    return max(diffs, default=0.0)


@dataclass(frozen=True)
class Closeness:
    """The result of `compare`: the largest difference, the limit it was held to, and the verdict."""

    max_abs_diff: float
    limit: float
    tolerance: Tolerance

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.limit

    def __str__(self) -> str:
        if self.ok:
            return f"yes (within {self.tolerance})"
        return f"NO: max |diff| {self.max_abs_diff:.2g}, allowed {self.limit:.0e}"


def compare(actual: Any, expected: Any, tolerance: Tolerance | None = None) -> Closeness:
    """Hold `actual` to `expected` within `tolerance` (default: by the expected outputs' dtype), tensor by tensor."""
    checks = []
    for x, y in _pairs(actual, expected):
        if x.numel():
            rule = tolerance or tolerance_for(y.dtype)
            diff = (x.float() - y.float()).abs().max().item()
            checks.append(Closeness(diff, rule.limit(y.float().abs().max().item()), rule))
    empty = Closeness(0.0, 0.0, tolerance or tolerance_for(torch.float32))
    return max(checks, key=lambda c: c.max_abs_diff - c.limit, default=empty)  # the tensor closest to failing


def close(actual: Any, expected: Any, tolerance: Tolerance | None = None) -> bool:
    """True if every tensor of `actual` is within tolerance of `expected` (see `compare`)."""
    return compare(actual, expected, tolerance).ok


def cosines(actual: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each row of two [n, hidden] embedding matrices: [n]."""
    return torch.nn.functional.cosine_similarity(actual.float(), expected.float(), dim=-1)
