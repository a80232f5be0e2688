"""Trace, check, save and load TorchScript modules, with a manifest that makes bad files fail loudly.

Introduced in notebook 03. `save` writes `model.pt` plus `model.pt.json` (sha256, size, traced shapes,
versions); `load` refuses a file that is missing, truncated or changed since it was saved.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from helpers import quiet

Inputs = Sequence[torch.Tensor]
MANIFEST_FORMAT = "torchscript-course/1"


class TraceMismatchError(RuntimeError):
    """A traced module disagrees with its Python model (or fails) at some input shape."""


class ModelFileError(RuntimeError):
    """A saved model file cannot be trusted: no manifest, truncated, changed, or unreadable."""


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


def trace(
    model: torch.nn.Module,
    example_inputs: Inputs | torch.Tensor,
    *,
    check_inputs: Iterable[Inputs] | None = None,
    quiet_known: bool = True,
) -> torch.jit.ScriptModule:
    """`torch.jit.trace` in eval mode without autograd; hides only the warnings notebook 01 explains.

    `check_inputs` (other example tuples, ideally other shapes) makes the tracer re-trace and compare,
    which catches shape-specialised traces that the default check (the example itself) passes.
    """
    model.eval()
    example = as_tuple(example_inputs)
    checks = [as_tuple(c) for c in check_inputs] if check_inputs is not None else None
    context = quiet.known_noise() if quiet_known else contextlib.nullcontext()
    with context, torch.no_grad():
        return torch.jit.trace(model, example, check_inputs=checks)


def flat_tensors(outputs: Any) -> list[torch.Tensor]:
    """All tensors in a model output (tensor, tuple, list, dict or ModelOutput), in order."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, Mapping):
        outputs = list(outputs.values())
    if isinstance(outputs, (tuple, list)):
        return [t for item in outputs for t in flat_tensors(item)]
    return []


def max_abs_diff(a: Any, b: Any) -> float:
    """Largest absolute difference between two model outputs of the same structure."""
    left, right = flat_tensors(a), flat_tensors(b)
    if len(left) != len(right):
        raise ValueError(f"outputs differ in structure: {len(left)} tensors vs {len(right)}")
    diffs = []
    for x, y in zip(left, right):
        if x.shape != y.shape:
            raise ValueError(f"outputs differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
        diffs.append((x.float() - y.float()).abs().max().item() if x.numel() else 0.0)
    return max(diffs, default=0.0)


def shape_label(inputs: Inputs) -> str:
    """'1x8' for inputs whose first tensor is 1 x 8."""
    return "x".join(str(d) for d in as_tuple(inputs)[0].shape)


@dataclass
class ShapeCheck:
    """One row of a verify report: how the traced module did at one input shape."""

    shape: str
    max_abs_diff: float | None
    error: str | None
    ok: bool


@dataclass
class VerifyReport:
    """Per-shape comparison of a traced module with its Python model."""

    atol: float
    rows: list[ShapeCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def __str__(self) -> str:
        lines = [f"{'shape':<10} {'max |diff|':>10}  ok (atol {self.atol:.0e})"]
        for row in self.rows:
            diff = f"{row.max_abs_diff:.1e}" if row.max_abs_diff is not None else "-"
            mark = "yes" if row.ok else f"NO  {row.error or 'outputs differ'}"
            lines.append(f"{row.shape:<10} {diff:>10}  {mark}")
        return "\n".join(lines)


def verify(
    traced: torch.nn.Module,
    model: torch.nn.Module,
    inputs_list: Iterable[Inputs],
    atol: float = 1e-5,
    raise_on_mismatch: bool = True,
) -> VerifyReport:
    """Run traced and eager on each input tuple; report the max abs difference per shape.

    Raises `TraceMismatchError` (with the report) if any shape differs by more than `atol` or fails,
    unless `raise_on_mismatch=False`.
    """
    report = VerifyReport(atol=atol)
    model.eval()
    for inputs in inputs_list:
        inputs = as_tuple(inputs)
        with torch.no_grad():
            expected = model(*inputs)
            try:
                got = traced(*inputs)
            except Exception as err:  # the traced graph itself failed at this shape
                first_line = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
                report.rows.append(ShapeCheck(shape_label(inputs), None, first_line, False))
                continue
        diff = max_abs_diff(got, expected)
        report.rows.append(ShapeCheck(shape_label(inputs), diff, None, diff <= atol))
    if raise_on_mismatch and not report.ok:
        raise TraceMismatchError(
            "the traced module disagrees with the model; trace at the shape you serve, or pad/bucket "
            f"inputs to traced shapes (notebook 02):\n{report}"
        )
    return report


def manifest_path(path: str | os.PathLike) -> Path:
    """The manifest that sits beside a saved model: `model.pt` -> `model.pt.json`."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe_inputs(traced: torch.jit.ScriptModule, example_inputs: Inputs) -> list[dict[str, Any]]:
    """Name, shape and dtype of each traced input (names read from the traced graph)."""
    names = [inp.debugName() for inp in list(traced.graph.inputs())[1:]]
    tensors = as_tuple(example_inputs)
    names = names if len(names) == len(tensors) else [f"input_{i}" for i in range(len(tensors))]
    return [
        {"name": name.split(".")[0], "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
        for name, t in zip(names, tensors)
    ]


def versions() -> dict[str, str]:
    """Versions that decide whether a saved file loads and matches: python, torch, transformers."""
    import transformers

    python = ".".join(platform.python_version_tuple()[:2])
    return {"python": python, "torch": torch.__version__, "transformers": transformers.__version__}


def save(
    traced: torch.jit.ScriptModule,
    path: str | os.PathLike,
    example_inputs: Inputs,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Save a traced module and its manifest; refuse to replace existing files unless `overwrite=True`.

    Writes to temporary files first and renames them into place, so an interrupted save never leaves
    a half-written model behind. Returns the manifest.
    """
    path = Path(path)
    manifest_file = manifest_path(path)
    existing = [p.name for p in (path, manifest_file) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{' and '.join(existing)} already {'exists' if len(existing) == 1 else 'exist'} in {path.parent}: "
            "choose another name, or pass overwrite=True to replace"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_model = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp_manifest = manifest_file.with_name(f".{manifest_file.name}.{os.getpid()}.tmp")
    try:
        with quiet.known_noise():
            torch.jit.save(traced, str(tmp_model))
        manifest = {
            "format": MANIFEST_FORMAT,
            "file": path.name,
            "bytes": tmp_model.stat().st_size,
            "sha256": sha256(tmp_model),
            "inputs": describe_inputs(traced, example_inputs),
            "versions": versions(),
        }
        tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp_model, path)
        os.replace(tmp_manifest, manifest_file)
    finally:
        for tmp in (tmp_model, tmp_manifest):
            tmp.unlink(missing_ok=True)
    return manifest


@dataclass(frozen=True)
class FileKind:
    """What kind of model file a manifest guards, and the words its errors use (see `TORCHSCRIPT`)."""

    format: str  # the manifest's "format" field
    call: str  # the call that makes the file
    verb: str  # "save" or "build"
    made: str  # "saved" or "built"
    again: str  # "re-save" or "rebuild"
    runs: str  # why an altered file is dangerous to load
    as_is: str  # how to load it anyway, if you trust it


TORCHSCRIPT = FileKind(
    MANIFEST_FORMAT, "tracing.save(traced, path, example_inputs)", "save", "saved", "re-save",
    "Loading a TorchScript file runs the code inside it", "torch.jit.load it directly",
)


def read_manifest(path: str | os.PathLike, kind: FileKind = TORCHSCRIPT) -> dict[str, Any]:
    """The manifest saved beside `path`; a clear error if it is missing or not a `kind` manifest."""
    manifest_file = manifest_path(path)
    if not manifest_file.exists():
        raise ModelFileError(
            f"{manifest_file.name} is missing, so {Path(path).name} cannot be checked. {kind.again.capitalize()} it "
            f"with {kind.call}; if you trust the file's source, {kind.as_is}"
        )
    try:
        manifest = json.loads(manifest_file.read_text())
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{manifest_file.name} is not valid JSON ({err}); {kind.again} the model") from err
    if not isinstance(manifest, dict) or manifest.get("format") != kind.format:
        raise ModelFileError(f"{manifest_file.name} is not a {kind.format} manifest; {kind.again} the model")
    return manifest


def check_file(path: str | os.PathLike, kind: FileKind = TORCHSCRIPT) -> dict[str, Any]:
    """Check a saved file against its manifest (exists, size, sha256); return the manifest."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {kind.verb} one with {kind.call}, or check the path")
    manifest = read_manifest(path, kind)
    size = path.stat().st_size
    if size != manifest["bytes"]:
        raise ModelFileError(
            f"{path.name} is {size} bytes but was {kind.made} as {manifest['bytes']}: the file is truncated or was "
            f"replaced. Copy it again or {kind.again} it"
        )
    if sha256(path) != manifest["sha256"]:
        raise ModelFileError(
            f"{path.name} changed after it was {kind.made} (sha256 differs from {manifest_path(path).name}). "
            f"{kind.runs}: {kind.again} it yourself rather than trusting it"
        )
    return manifest


def load(path: str | os.PathLike, *, map_location: str = "cpu") -> torch.jit.ScriptModule:
    """Load a module saved by `save`, after checking it against its manifest; returned in eval mode."""
    check_file(path)
    try:
        with quiet.known_noise():
            module = torch.jit.load(str(path), map_location=map_location)
    except RuntimeError as err:
        raise ModelFileError(f"torch.jit.load could not read {Path(path).name}: {str(err).splitlines()[0]}") from err
    return module.eval()
