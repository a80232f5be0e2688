"""Model files you can trust: a manifest beside every file, checked before anything is loaded.

Introduced in notebook 03. `save` writes `model.pt` plus `model.pt.json` (size, sha256, inputs, the shapes it was
traced and verified at, versions); `load` refuses a file that is missing, truncated, changed or has an incomplete
manifest, and returns a `TracedModel` that refuses calls at shapes it was never checked at. `export.package`
(`.pt2`) and the generators of notebook 07 (`generation.json`) use the same machinery.
`python -m helpers.files MODEL INPUTS OUT` runs a saved model in a process that imports only torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from helpers import course

Shape = tuple[int, ...]


class ModelFileError(RuntimeError):
    """A saved file cannot be trusted: no manifest, truncated, changed, incomplete or unreadable."""


@dataclass(frozen=True)
class FileKind:
    """What kind of file a manifest guards, the words its errors use, and the keys its manifest must have."""

    format: str  # the manifest's "format" field
    call: str  # the call that makes the file
    made: str  # "saved" or "built"
    again: str  # "re-save" or "rebuild"
    runs: str  # why an altered file is dangerous to load
    as_is: str  # how to load it anyway, if you trust it
    keys: tuple[str, ...] = ("format", "file", "bytes", "sha256", "versions")


TORCHSCRIPT = FileKind(
    "torchscript-course/1", "files.save(traced, path, example_inputs)", "saved", "re-save",
    "Loading a TorchScript file runs the code inside it", "torch.jit.load it directly",
    keys=("format", "file", "bytes", "sha256", "inputs", "serves", "versions"),
)
AOTI = FileKind(
    "torchscript-course/aoti-1", "export.package(program, path)", "built", "rebuild",
    "A .pt2 holds a compiled library that loading runs", "torch._inductor.aoti_load_package loads it as is",
    keys=("format", "file", "bytes", "sha256", "inputs", "outputs", "dims", "call", "settings", "versions"),
)
GENERATOR = FileKind(
    "torchscript-course-generation/1", "generator.save(folder)", "saved", "re-save",
    "generation.json decides which tokens the generator emits", "read generation.json yourself",
    keys=("format", "file", "bytes", "sha256", "kind", "versions"),
)


def manifest_path(path: str | os.PathLike) -> Path:
    """The manifest that sits beside a saved file: `model.pt` -> `model.pt.json`."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def refuse_overwrite(*paths: str | os.PathLike, overwrite: bool = False) -> None:
    """FileExistsError naming every path that exists, unless `overwrite`: nothing is ever replaced silently."""
    existing = [Path(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        names = " and ".join(p.name for p in existing)
        raise FileExistsError(f"{names} already {'exists' if len(existing) == 1 else 'exist'} in "
                              f"{existing[0].parent}: choose another name, or pass overwrite=True to replace")


def write_checked(path: str | os.PathLike, write: Callable[[Path], dict[str, Any] | None], kind: FileKind,
                  details: dict[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """`write(tmp)` a file, then put it at `path` with its manifest: `details`, anything `write` returns, and the
    file's size, sha256 and the versions that wrote it.

    Refuses to replace either file unless `overwrite`; writes into a temporary folder beside `path` and renames
    the results into place, so an interrupted write never leaves a half-written file. Returns the manifest.
    """
    path = Path(path)
    refuse_overwrite(path, manifest_path(path), overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as staging:  # same disk
        tmp = Path(staging) / path.name  # a .pt2's root folder is named after the file
        found = write(tmp) or {}
        manifest = {"format": kind.format, "file": path.name, "bytes": tmp.stat().st_size, "sha256": sha256(tmp),
                    **details, **found, "versions": course.versions()}
        manifest_path(tmp).write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp, path)
        os.replace(manifest_path(tmp), manifest_path(path))
    return manifest


def read_manifest(path: str | os.PathLike, kind: FileKind) -> dict[str, Any]:
    """The manifest beside `path`; ModelFileError if it is missing, not JSON, of another kind or incomplete."""
    manifest_file = manifest_path(path)
    if not manifest_file.exists():
        raise ModelFileError(f"{manifest_file.name} is missing, so {Path(path).name} cannot be checked. "
                             f"{kind.again.capitalize()} it with {kind.call}; if you trust its source, {kind.as_is}")
    try:
        manifest = json.loads(manifest_file.read_text())
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{manifest_file.name} is not valid JSON ({err}); {kind.again} the file") from err
    if not isinstance(manifest, dict) or manifest.get("format") != kind.format:
        raise ModelFileError(f"{manifest_file.name} is not a {kind.format} manifest; {kind.again} the file "
                             f"with {kind.call}")
    missing = [key for key in kind.keys if key not in manifest]
    if missing:
        raise ModelFileError(f"{manifest_file.name} has no {', '.join(missing)}: it was not written by "
                             f"{kind.call} or was edited; {kind.again} the file")
    return manifest


def check_file(path: str | os.PathLike, kind: FileKind) -> dict[str, Any]:
    """Check a saved file against its manifest (exists, size, sha256); return the manifest."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: make it with {kind.call}, or check the path")
    manifest = read_manifest(path, kind)
    size = path.stat().st_size
    if size != manifest["bytes"]:
        raise ModelFileError(f"{path.name} is {size} bytes but was {kind.made} as {manifest['bytes']}: the file is "
                             f"truncated or was replaced. Copy it again or {kind.again} it")
    if sha256(path) != manifest["sha256"]:
        raise ModelFileError(f"{path.name} changed after it was {kind.made} (sha256 differs from "
                             f"{manifest_path(path).name}). {kind.runs}: {kind.again} it yourself rather than "
                             "trusting it")
    return manifest


def describe_inputs(traced: torch.jit.ScriptModule, example_inputs: Sequence[torch.Tensor]) -> list[dict[str, Any]]:
    """Name, shape and dtype of each traced input (names read from the traced graph)."""
    names = [inp.debugName().split(".")[0] for inp in list(traced.graph.inputs())[1:]]
    names = names if len(names) == len(example_inputs) else [f"input_{i}" for i in range(len(example_inputs))]
    return [{"name": name, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
            for name, t in zip(names, example_inputs)]


def save(traced: torch.jit.ScriptModule, path: str | os.PathLike, example_inputs: Sequence[torch.Tensor],
         *, verified: Any = None, runtime: dict[str, Any] | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Save a traced module and its manifest; refuse to replace existing files unless `overwrite=True`.

    The manifest's "serves" lists the input shapes the module may be called with: the example's, plus every
    shape at which `verified` (a `tracing.verify` report) found it equal to the model. `runtime` records the
    settings it was timed with, e.g. {"onednn_fusion": True} (`load` warns when they are off). Returns the manifest.
    """
    example = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    serves = [[list(t.shape) for t in example]]
    for shapes in getattr(verified, "verified", []):
        if [list(s) for s in shapes] not in serves:
            serves.append([list(s) for s in shapes])

    def write(tmp: Path) -> None:
        with course.known_noise():
            torch.jit.save(traced, str(tmp))
    details = {"inputs": describe_inputs(traced, example), "serves": serves}
    if runtime:
        details["runtime"] = runtime
    return write_checked(path, write, TORCHSCRIPT, details, overwrite=overwrite)


SHAPE_CHECKS = ("refuse", "warn", "off")


class TracedModel:
    """A loaded TorchScript module that checks each call's input shapes against those its manifest says it serves.

    `shapes="refuse"` (default) raises a ValueError at any other shape, naming the shapes served and the fix;
    "warn" warns and runs; "off" runs anything. Attributes (`.code`, `.graph`, submodules) are the module's.
    """

    def __init__(self, module: torch.jit.ScriptModule, manifest: dict[str, Any], shapes: str = "refuse"):
        if shapes not in SHAPE_CHECKS:
            raise ValueError(f"shapes={shapes!r}: choose one of {SHAPE_CHECKS}")
        self.module, self.manifest, self.shapes = module, manifest, shapes

    def serves(self) -> str:
        return ", ".join(" & ".join("x".join(map(str, s)) for s in shapes) for shapes in self.manifest["serves"])

    def __call__(self, *inputs: torch.Tensor) -> Any:
        got = [list(t.shape) for t in inputs]
        if self.shapes != "off" and got not in self.manifest["serves"]:
            label = " & ".join("x".join(map(str, s)) for s in got)
            message = (f"{self.manifest['file']} was traced and checked at {self.serves()}, not {label}: pad to one of "
                       "those shapes, or verify the trace at this shape (tracing.verify) and save it with "
                       "verified=report; load(path, shapes='warn') runs it unchecked")
            if self.shapes == "refuse":
                raise ValueError(message)
            warnings.warn(message, stacklevel=2)
        return self.module(*inputs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    def __repr__(self) -> str:
        return f"TracedModel({self.manifest['file']}, serves {self.serves()}, shapes={self.shapes!r})"


def load(path: str | os.PathLike, *, map_location: str = "cpu", shapes: str = "refuse") -> TracedModel:
    """Load a module saved by `save`, after checking it against its manifest; returned in eval mode."""
    manifest = check_file(path, TORCHSCRIPT)
    if manifest.get("runtime", {}).get("onednn_fusion") and not torch.jit.onednn_fusion_enabled():
        warnings.warn(f"{Path(path).name} was timed with oneDNN Graph fusion, which is off in this process: it runs "
                      "correctly but unfused (slower). Call torch.jit.enable_onednn_fusion(True) before its first "
                      "calls, or load it with timing.choice.load, which does and says so", stacklevel=2)
    try:
        with course.known_noise():
            module = torch.jit.load(str(path), map_location=map_location)
    except RuntimeError as err:
        raise ModelFileError(f"torch.jit.load could not read {Path(path).name}: {str(err).splitlines()[0]}") from err
    return TracedModel(module.eval(), manifest, shapes)


def contents(path: str | os.PathLike, depth: int = 3, top: int = 6) -> str:
    """The `top` biggest groups of files inside a zip-based model file, by folder (to `depth`) and extension."""
    groups: dict[str, list[int]] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            *folders, name = info.filename.split("/")[1:]  # the first folder is named after the file
            key = "/".join(folders[:depth] + [f"*{Path(name).suffix}"]) if folders else name
            group = groups.setdefault(key, [0, 0])
            group[0], group[1] = group[0] + 1, group[1] + info.file_size
    biggest = sorted(groups.items(), key=lambda item: -item[1][1])[:top]
    return "\n".join(f"{key:<48} {files:>4} files {size / 1e6:9.1f} MB" for key, (files, size) in biggest)


def serve(model_path: str, inputs_path: str, out_path: str) -> None:
    """Check the model file against its manifest, run it on the saved inputs, save the outputs, and say what
    was imported. What `python -m helpers.files` does, in a process that imports only torch."""
    kind = AOTI if model_path.endswith(".pt2") else TORCHSCRIPT
    check_file(model_path, kind)
    if kind is AOTI:
        module = torch._inductor.aoti_load_package(model_path)
    else:
        with course.known_noise():
            module = torch.jit.load(model_path).eval()
    inputs = torch.load(inputs_path)
    with torch.inference_mode():
        torch.save(module(*inputs), out_path)
    print(f"fresh process checked and ran {Path(model_path).name} on {[tuple(t.shape) for t in inputs]}; "
          f"transformers imported: {'transformers' in sys.modules}")


def run_in_fresh_process(model_path: str | Path, inputs: tuple[torch.Tensor, ...]) -> object:
    """Run `model_path` on `inputs` in a new Python process (`serve`); return its outputs and print its report."""
    with tempfile.TemporaryDirectory(prefix="serve-") as tmp:
        inputs_file, out_file = Path(tmp) / "inputs.pt", Path(tmp) / "outputs.pt"
        torch.save(tuple(inputs), inputs_file)
        done = subprocess.run([sys.executable, "-m", "helpers.files", str(model_path), str(inputs_file),
                               str(out_file)], capture_output=True, text=True)
        if done.returncode != 0:
            last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit code {done.returncode}"
            raise RuntimeError(f"the fresh process failed: {last}")
        print(done.stdout.strip())
        return torch.load(out_file)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit("usage: python -m helpers.files MODEL INPUTS OUT")
    serve(*sys.argv[1:])
