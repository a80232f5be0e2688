"""Trace a model and check the trace against the model at every shape you will serve.

Introduced in notebook 01 (`trace`) and 02 (`verify`). Saving and loading traced modules is `helpers.files`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from helpers import accuracy, course

Inputs = Sequence[torch.Tensor]
Shape = tuple[int, ...]


class TraceMismatchError(RuntimeError):
    """A traced module disagrees with its Python model (or fails) at some input shape."""


def as_tuple(inputs: Inputs | torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Example inputs as the positional tuple that `torch.jit.trace` and traced modules take."""
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, Mapping):
        raise TypeError(
            "pass inputs as a tuple in the order of model.forward, e.g. "
            "(enc['input_ids'], enc['attention_mask']), not a dict: traced modules take positional inputs"
        )
    return tuple(inputs)


def shape_label(tensor_or_shape: torch.Tensor | Sequence[int]) -> str:
    """'1x8' for a tensor (or shape) of 1 x 8."""
    shape = tensor_or_shape.shape if isinstance(tensor_or_shape, torch.Tensor) else tensor_or_shape
    return "x".join(str(d) for d in shape)


def shapes_of(inputs: Inputs | torch.Tensor) -> list[Shape]:
    """The shape of each input tensor, as plain tuples."""
    return [tuple(t.shape) for t in as_tuple(inputs)]


def trace(
    model: torch.nn.Module,
    example_inputs: Inputs | torch.Tensor,
    *,
    check_inputs: Iterable[Inputs] | None = None,
    tracer_warnings: bool = True,
) -> torch.jit.ScriptModule:
    """`torch.jit.trace` in eval mode without autograd, hiding only the warnings notebook 01 explains.

    `check_inputs` (other example tuples, ideally other shapes) makes the tracer re-trace and compare, which
    catches shape-specialised traces that the default check (the example itself) passes.
    `tracer_warnings=False` also hides TracerWarnings (a value frozen at trace time): only for a trace that
    is checked instead, by `verify` or `check_inputs`, at every shape it will be called with.
    """
    model.eval()
    example = as_tuple(example_inputs)
    checks = [as_tuple(c) for c in check_inputs] if check_inputs is not None else None
    with course.known_noise(), torch.no_grad(), warnings.catch_warnings():
        if not tracer_warnings:
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=r"The \.grad attribute of a Tensor that is not a leaf")
        return torch.jit.trace(model, example, check_inputs=checks)


@dataclass
class ShapeCheck:
    """One row of a verify report: how the traced module did at one set of input shapes."""

    shapes: list[Shape]
    closeness: accuracy.Closeness | None  # None when the trace raised
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.closeness is not None and self.closeness.ok

    @property
    def max_abs_diff(self) -> float | None:
        return self.closeness.max_abs_diff if self.closeness else None

    @property
    def label(self) -> str:
        return shape_label(self.shapes[0])


@dataclass
class VerifyReport:
    """Per-shape comparison of a traced module with its Python model, each against a stated tolerance."""

    rows: list[ShapeCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def verified(self) -> list[list[Shape]]:
        """The input shapes at which the trace matched its model."""
        return [row.shapes for row in self.rows if row.ok]

    def __str__(self) -> str:
        rule = next((row.closeness.tolerance for row in self.rows if row.closeness), None)
        lines = [f"{'shape':<10} matches eager (within {rule or 'tolerance'})"]
        for row in self.rows:
            verdict = "yes" if row.ok else (f"NO: {row.error}" if row.error else str(row.closeness))
            lines.append(f"{row.label:<10} {verdict}")
        return "\n".join(lines)


def _check_one(traced: torch.nn.Module, model: torch.nn.Module, inputs: tuple,
               tolerance: accuracy.Tolerance | None) -> ShapeCheck:
    with torch.no_grad():
        expected = model(*inputs)
        try:
            got = traced(*inputs)
        except Exception as err:  # the traced graph itself failed at this shape
            message = str(err).strip().splitlines()[-1] if str(err).strip() else ""
            kind = type(err).__name__
            error = message if message.startswith(f"{kind}:") else f"{kind}: {message}".rstrip(": ")
            return ShapeCheck(shapes_of(inputs), None, error)
    return ShapeCheck(shapes_of(inputs), accuracy.compare(got, expected, tolerance))


def verify(
    traced: torch.nn.Module,
    model: torch.nn.Module,
    inputs_list: Iterable[Inputs],
    tolerance: accuracy.Tolerance | None = None,
    raise_on_mismatch: bool = True,
) -> VerifyReport:
    """Run traced and eager on each input tuple; report per shape whether they agree within `tolerance`
    (default: `accuracy.TOLERANCES` for the outputs' dtype).

    Raises `TraceMismatchError` (with the report) if any shape differs or fails, unless `raise_on_mismatch=False`.
    """
    model.eval()
    report = VerifyReport([_check_one(traced, model, as_tuple(inputs), tolerance) for inputs in inputs_list])
    if raise_on_mismatch and not report.ok:
        raise TraceMismatchError(
            "the traced module disagrees with the model; trace at the shape you serve, or pad/bucket inputs to "
            f"traced shapes (helpers.shapes.BucketedModel):\n{report}"
        )
    return report
