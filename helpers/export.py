"""torch.export and AOTInductor packages: what replaces `torch.jit.trace` + `torch.jit.save`.

Introduced in notebook 06. `export_program` captures a model with a dynamic batch size and sequence length;
`package` compiles it ahead of time into a `.pt2` (kernels and weights in a shared library, loaded from Python by
`torch._inductor.aoti_load_package`, from C++ by `torch::inductor::AOTIModelPackageLoader`) plus a manifest beside
it, as `files.save` does (`cached_package` reuses a build made from the same program); `load_package` checks the file against its manifest and returns a callable that
refuses shapes outside the exported range, which the compiled code itself does not check (cpp/run_model checks
them from the metadata `package` stores inside the `.pt2`).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import inspect
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.export import Dim, ExportedProgram

from helpers import files, tracing

MAX_BATCH = 64
MIN_DYNAMIC = 2
"""torch.export fixes every dim whose example size is 0 or 1, so examples need 2+ tokens (batch 1 is widened)."""
FIXES = {
    "batch": "split the batch into chunks of at most {hi}, or export with a larger max_batch",
    "seq": "truncate or pad to {lo}..{hi} tokens (tokenizer(..., truncation=True, max_length={hi})), "
    "or export with another max_seq",
}


@contextlib.contextmanager
def torch_internal_noise() -> Iterator[None]:
    """Hide two messages torch 2.13 prints from its own internals while exporting and compiling.

    A FutureWarning about `LeafSpec` (raised inside torch's pytree code, not by yours) and the ONNX exporter's
    log lines saying torchvision is not installed (it registers torchvision's operators when present).
    """
    onnx_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`", category=FutureWarning)
            yield
    finally:
        onnx_log.setLevel(level)


def dynamic_shapes(names: list[str], max_seq: int, max_batch: int = MAX_BATCH) -> dict[str, dict[int, Dim]]:
    """{name: {0: batch, 1: seq}} for every input: one `batch` and one `seq` Dim shared by all of them."""
    batch, seq = Dim("batch", min=1, max=max_batch), Dim("seq", min=MIN_DYNAMIC, max=max_seq)
    return {name: {0: batch, 1: seq} for name in names}


def _bind_example(model: torch.nn.Module, example_inputs: Any) -> tuple[tuple, dict, list[str]]:
    """(args, kwargs, names): a Mapping gives keyword inputs; a tuple, positional ones named after `forward`."""
    if isinstance(example_inputs, Mapping):
        return (), dict(example_inputs), list(example_inputs)
    args = tracing.as_tuple(example_inputs)
    return args, {}, list(inspect.signature(model.forward).parameters)[: len(args)]


def _widen_batch(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Repeat a batch of 1 to 2 so the batch dim stays dynamic; refuse examples shorter than 2 tokens."""
    for t in tensors:
        if t.dim() < 2 or t.shape[1] < MIN_DYNAMIC:
            raise ValueError(f"example input of shape {tuple(t.shape)}: a dynamic export needs [batch, seq] inputs "
                             f"with at least {MIN_DYNAMIC} tokens (torch.export fixes size-1 dims)")
    return [t.repeat(2, *[1] * (t.dim() - 1)) if t.shape[0] == 1 else t for t in tensors]


def export_program(
    model: torch.nn.Module,
    example_inputs: Any,
    dynamic: bool = True,
    *,
    max_batch: int = MAX_BATCH,
    max_seq: int | None = None,
) -> ExportedProgram:
    """`torch.export.export` in eval mode, with dynamic `batch` (1..max_batch) and `seq` (2..max_seq) dims.

    `example_inputs` is a tuple in `forward`'s order (as for `tracing.trace`) or a dict of named inputs;
    `max_seq` defaults to the model's max_position_embeddings. With `dynamic=False` the program serves only the
    example's shapes.
    """
    model.eval()
    args, kwargs, names = _bind_example(model, example_inputs)
    shapes = None
    if dynamic:
        widened = _widen_batch(list(args) or list(kwargs.values()))
        args, kwargs = (tuple(widened), {}) if args else ((), dict(zip(names, widened)))
        shapes = dynamic_shapes(names, max_seq or model.config.max_position_embeddings, max_batch)
    with torch.no_grad():
        return torch.export.export(model, args, kwargs, dynamic_shapes=shapes)


def _tensor_spec(name: str, value: torch.Tensor, dim_names: dict[str, str]) -> dict[str, Any]:
    dims = [dim_names.get(str(d), str(d)) if isinstance(d, torch.SymInt) else int(d) for d in value.shape]
    return {"name": name, "dims": dims, "dtype": str(value.dtype).removeprefix("torch.")}


def signature(program: ExportedProgram) -> dict[str, Any]:
    """Inputs and outputs in call order ([batch, seq, 384]...), each dynamic dim's range, positional or keyword."""
    placeholders = {n.name: n.meta["val"] for n in program.graph.find_nodes(op="placeholder")}
    user = [placeholders[name] for name in program.graph_signature.user_inputs]
    dim_names: dict[str, str] = {}  # torch's symbol (s43) -> our name: first seen on axis 0 is batch, on 1 seq
    for value in user:
        for axis, size in enumerate(value.shape):
            if isinstance(size, torch.SymInt):
                dim_names.setdefault(str(size), {0: "batch", 1: "seq"}.get(axis, str(size)))
    inputs = [_tensor_spec(n, v, dim_names) for n, v in zip(program.graph_signature.user_inputs, user)]
    values = [node.meta["val"] for node in program.graph.find_nodes(op="output")[0].args[0]]
    keys = program.call_spec.out_spec.context  # a ModelOutput's or dict's keys; None for a tuple
    keys = keys if isinstance(keys, list) and len(keys) == len(values) else [f"output_{i}" for i in range(len(values))]
    dims = {dim_names[str(s)]: [int(r.lower), int(r.upper)] for s, r in program.range_constraints.items()
            if str(s) in dim_names}
    call = "keyword" if program.example_inputs and program.example_inputs[1] else "positional"
    return {"inputs": inputs, "outputs": [_tensor_spec(k, v, dim_names) for k, v in zip(keys, values)],
            "dims": dims, "call": call}


def describe(sig: Mapping[str, Any]) -> str:
    """A signature (or manifest) as three readable lines: inputs, outputs, dims."""
    def tensors(items):
        return ", ".join(f"{t['name']} [{', '.join(map(str, t['dims']))}] {t['dtype']}" for t in items)

    ranges = ", ".join(f"{name} {lo}..{hi}" for name, (lo, hi) in sig["dims"].items()) or "none (static shapes)"
    return f"inputs  {tensors(sig['inputs'])}\noutputs {tensors(sig['outputs'])}\ndims    {ranges}"


def check_inputs(sig: Mapping[str, Any], named: Mapping[str, torch.Tensor]) -> None:
    """Raise a ValueError naming the limit and the fix unless `named` fits: dtypes, ranks, every dim in range."""
    seen: dict[str, tuple[int, str]] = {}
    for spec in sig["inputs"]:
        name, tensor = spec["name"], named[spec["name"]]
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype != spec["dtype"] or tensor.dim() != len(spec["dims"]):
            raise ValueError(f"{name} is {dtype} with shape {tuple(tensor.shape)}; this package takes "
                             f"{spec['dtype']} [{', '.join(map(str, spec['dims']))}]")
        for size, dim in zip(tensor.shape, spec["dims"]):
            if isinstance(dim, int) and size != dim:
                raise ValueError(f"{name} has shape {tuple(tensor.shape)}; this package was exported for "
                                 f"{spec['dims']} only - export with dynamic=True to serve other shapes")
            if isinstance(dim, str):
                lo, hi = sig["dims"][dim]
                if not lo <= size <= hi:
                    fix = FIXES.get(dim, "export with a range that covers it").format(lo=lo, hi=hi)
                    raise ValueError(f"{name} has {dim} {size}; this package serves {dim} {lo}..{hi} - {fix}")
                first = seen.setdefault(dim, (size, name))
                if first[0] != size:
                    raise ValueError(f"{name} has {dim} {size} but {first[1]} has {first[0]}: inputs share {dim}")


def _with_dtype(program: ExportedProgram, dtype: torch.dtype | None) -> ExportedProgram:
    """The program re-exported with its floating weights cast to `dtype`; the original is left untouched."""
    if dtype is None or {t.dtype for t in program.state_dict.values() if t.is_floating_point()} <= {dtype}:
        return program
    module = copy.deepcopy(program.module()).to(dtype)  # .module() shares the program's weights: copy first
    sig, (args, kwargs) = signature(program), program.example_inputs
    ranges = {name: Dim(name, min=lo, max=hi) for name, (lo, hi) in sig["dims"].items()}
    shapes = [{axis: ranges[d] for axis, d in enumerate(spec["dims"]) if isinstance(d, str)} for spec in sig["inputs"]]
    shapes = dict(zip(kwargs, shapes)) if kwargs else tuple(shapes)
    with torch.no_grad():
        return torch.export.export(module, args, kwargs, dynamic_shapes=shapes if ranges else None)


def build_settings(dtype: torch.dtype | None, freeze: bool, max_autotune: bool) -> dict[str, Any]:
    """How a package was built, as its manifest records it: the dtype and the options `_compile` gives Inductor.

    `check_lowerbound` is always False. AOTInductor's own input check (on only when AOTI_RUNTIME_CHECK_INPUTS=1,
    as cpp/run_model sets it) assumes every dynamic dim is >= 2, as export does while compiling, so it refused a
    batch of 1 that the compiled code computes correctly. Off, it checks upper bounds only; `check_inputs` (Python)
    and run_model (C++, from the package's metadata) check the full exported range before every call.
    """
    name = str(dtype).removeprefix("torch.") if dtype else None
    return {"dtype": name, "freezing": freeze, "max_autotune": max_autotune, "check_lowerbound": False}


def _compile(program: ExportedProgram, path: Path, settings: dict[str, Any]) -> tuple[float, str]:
    """Run AOTInductor; return (seconds it took, the CPU instruction set its kernels were compiled for)."""
    sig = signature(program)
    options = {"freezing": settings["freezing"], "max_autotune": settings["max_autotune"],
               "aot_inductor.check_lowerbound": settings["check_lowerbound"]}
    metadata = {  # strings inside the .pt2: C++ reads them with AOTIModelPackageLoader::get_metadata()
        "course.inputs": ";".join(f"{t['name']}[{','.join(map(str, t['dims']))}]:{t['dtype']}" for t in sig["inputs"]),
        "course.dims": ";".join(f"{name}={lo}..{hi}" for name, (lo, hi) in sig["dims"].items()),
        "course.outputs": ";".join(t["name"] for t in sig["outputs"]),
    }
    start = time.perf_counter()
    with torch_internal_noise():
        torch._inductor.aoti_compile_and_package(
            program, package_path=str(path), inductor_configs={**options, "aot_inductor.metadata": metadata})
    seconds = time.perf_counter() - start
    return seconds, torch._inductor.aoti_load_package(str(path)).get_metadata().get("AOTI_CPU_ISA", "unknown")


def package(
    program: ExportedProgram,
    path: str | os.PathLike,
    *,
    dtype: torch.dtype | None = None,
    freeze: bool = True,
    max_autotune: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Compile `program` with AOTInductor into the `.pt2` at `path` plus `path.json`; return the manifest.

    `dtype` casts the floating weights first (torch.bfloat16 is the fast path on CPUs with bf16 units, notebook
    05). `freeze` lets Inductor treat weights as constants to fold and pre-pack. `max_autotune` times kernel
    choices while compiling: a much slower build, measured in benchmarks/backends.py. Refuses to replace files
    unless `overwrite=True`; builds in a temporary folder beside `path` and renames the results into place.
    """
    path = Path(path)
    if path.suffix != ".pt2":
        raise ValueError(f"{path.name}: an AOTInductor package must end in .pt2 (its loaders expect it)")
    files.refuse_overwrite(path, files.manifest_path(path), overwrite=overwrite)
    with torch_internal_noise():
        program = _with_dtype(program, dtype)
    settings = build_settings(dtype, freeze, max_autotune)

    def write(tmp: Path) -> dict[str, Any]:
        seconds, isa = _compile(program, tmp, settings)
        return {"cpu_isa": isa, "compile_seconds": round(seconds, 1), "built": dt.date.today().isoformat()}
    weights = sorted({str(t.dtype)[len("torch."):] for t in program.state_dict.values() if t.is_floating_point()})
    details = {**signature(program), "dtype": "+".join(weights), "settings": settings}
    return files.write_checked(path, write, files.AOTI, details, overwrite=overwrite)


def check_package(path: str | os.PathLike) -> dict[str, Any]:
    """Check a `.pt2` against its manifest (exists, size, sha256, torch version); return the manifest."""
    manifest = files.check_file(path, files.AOTI)
    built_with = manifest["versions"]["torch"]
    if built_with != torch.__version__:
        raise files.ModelFileError(f"{Path(path).name} was compiled by torch {built_with}; this is torch "
                                     f"{torch.__version__}. A package needs the torch that built it: rebuild it")
    return manifest


class Package:
    """A loaded `.pt2`, called like the model (positional or keyword inputs) after `check_inputs`.

    The compiled code does not check shapes: outside the exported range it reads out of bounds or aborts the
    whole process. So every call is checked first, and a bad shape raises a ValueError naming the range and the fix.
    """

    def __init__(self, runner: Any, manifest: dict[str, Any]):
        self.runner, self.manifest = runner, manifest
        self.names = [spec["name"] for spec in manifest["inputs"]]
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        self.signature = inspect.Signature([inspect.Parameter(name, kind) for name in self.names])

    def __call__(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> Any:
        try:
            named = self.signature.bind(*args, **kwargs).arguments
        except TypeError as err:
            raise TypeError(f"{err}: this package takes {self.names}, in that order") from None
        check_inputs(self.manifest, named)
        return self.runner(**named) if self.manifest["call"] == "keyword" else self.runner(*named.values())

    def __repr__(self) -> str:
        return f"Package({self.manifest['file']}, {self.manifest['dtype']})\n{describe(self.manifest)}"


def load_package(path: str | os.PathLike) -> Package:
    """Load a `.pt2` built by `package`, after checking it against its manifest."""
    manifest = check_package(path)
    try:
        runner = torch._inductor.aoti_load_package(str(path))
    except RuntimeError as err:
        raise files.ModelFileError(f"aoti_load_package could not read {Path(path).name}: "
                                     f"{str(err).strip().splitlines()[0]}") from err
    return Package(runner, manifest)


def fingerprint(program: ExportedProgram) -> str:
    """sha256 of a program's graph and weights: the same program always gives the same digest."""
    digest = hashlib.sha256(str(program.graph).encode())
    for name, tensor in sorted({**program.state_dict, **program.constants}.items()):
        if isinstance(tensor, torch.Tensor):
            digest.update(name.encode() + str(tensor.dtype).encode())
            digest.update(tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cached_package(program: ExportedProgram, path: str | os.PathLike, **settings: Any) -> dict[str, Any]:
    """`package` for a build folder: reuse `path` if this torch built it from this program with these
    settings for this CPU's instruction set (the program's `fingerprint` sits beside it in `path.program`), else
    (re)build it. Prints which."""
    from torch._inductor import cpu_vec_isa

    path, wanted = Path(path), build_settings(
        settings.get("dtype"), settings.get("freeze", True), settings.get("max_autotune", False))
    source, key_file = fingerprint(program), Path(f"{path}.program")
    isa, reason = str(cpu_vec_isa.pick_vec_isa()).upper(), "not built yet"  # what Inductor compiles for here
    if path.exists():
        try:
            manifest = check_package(path)
            if manifest["cpu_isa"] != isa:
                reason = f"it was compiled for {manifest['cpu_isa']}; this CPU runs {isa}"
            elif manifest["settings"] == wanted and key_file.exists() and key_file.read_text() == source:
                print(f"reused {path.name} (compiled in {manifest['compile_seconds']} s on {manifest['built']})")
                return manifest
            else:
                reason = "it was built from another program or with other settings"
        except files.ModelFileError as err:
            reason = str(err)
    key_file.unlink(missing_ok=True)
    manifest = package(program, path, overwrite=True, **settings)
    key_file.write_text(source)
    print(f"compiled {path.name} in {manifest['compile_seconds']} s ({reason})")
    return manifest
