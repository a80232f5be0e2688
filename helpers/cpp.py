"""Run exported models from C++: the files both sides read, building `cpp/`, and calling the program.

Introduced in notebook 08. The C++ program `cpp/run_model.cpp` links the LibTorch that ships inside the
installed torch wheel (no separate download). `build()` compiles it once into `cpp/build/` (`make cpp`
does the same); `write_inputs`, `write_tensors` and `read_tensors` speak its plain-text tensor format; `run()`
calls it and returns its outputs and the timings of its own warm-up-then-repeat loop. It runs `.pt` files
from `helpers.files.save` and `.pt2` packages from `helpers.export.package`, after checking each against the
manifest beside it (as `files.load` does), and checks the inputs against the shapes the model serves.

Its exit codes (cpp/run_model.cpp states them too); `CppError.code` holds the one a failed call gave:

    0  the outputs were written
    1  LibTorch could not load or run the model, or another failure (out of memory, ...)
    2  bad command line or input file, or inputs of a shape the model does not serve
    3  the model file was refused: missing, no manifest beside it, an invalid or incomplete manifest, the file
       truncated or changed since it was saved (size, sha256), or a .pt2 compiled by another torch
    4  the outputs could not be written (a missing or read-only folder, a full disk)

The outputs file is written under a temporary name beside it and renamed into place: it is complete or absent.

The tensor-text format (also described in cpp/tensor_text.hpp):

    # tensor-text v1
    input_ids int64 2 8              <- name, dtype (int64 or float32), shape
    101 7592 1010 2088 102 0 0 0     <- one line per row of the last dimension
    ...
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.utils

from helpers import course, timing

SETTING = "COURSE_CPP"
"""Environment variable naming the folder of the C++ sources, for an installed copy of `helpers` used elsewhere."""
FORMAT_LINE = "# tensor-text v1"
DTYPES = {torch.int64: "int64", torch.float32: "float32"}
INPUT_NAMES = ("input_ids", "attention_mask")  # what run_model feeds the model, in this order


class BuildError(RuntimeError):
    """The C++ program could not be built: no compiler or CMake, or the build failed (the log's tail says why)."""


class CppError(RuntimeError):
    """The C++ program refused its inputs or failed: the message is its own `error:` text, `code` its exit code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


@dataclass
class CppRun:
    """What one call of the C++ program gave back."""

    outputs: list[torch.Tensor]  # output_0, output_1, ... as the model returned them
    timing: timing.Timing  # its timed loop, summarized like helpers.timing.measure
    log: str  # what it printed (checks, model, inputs, outputs, warnings), less its timing lines


def write_tensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], *, overwrite: bool = False) -> Path:
    """Write named int64/float32 tensors as tensor-text; refuse to replace a file unless `overwrite=True`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists: choose another name, or pass overwrite=True to replace it")
    lines = [FORMAT_LINE]
    for name, tensor in tensors.items():
        if tensor.dtype not in DTYPES:
            raise TypeError(f"{name} is {tensor.dtype}; tensor-text holds int64 or float32: convert it with "
                            ".long() or .float()")
        if tensor.numel() == 0:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}: tensor-text needs every dimension >= 1")
        lines.append(" ".join([name, DTYPES[tensor.dtype], *map(str, tensor.shape)]))
        rows = tensor.reshape(-1, tensor.shape[-1] if tensor.dim() else 1).tolist()  # [rows, last dim]
        fmt = "{:.9g}" if tensor.is_floating_point() else "{}"  # 9 digits round-trip any float32
        lines += [" ".join(fmt.format(v) for v in row) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_inputs(path: str | os.PathLike, inputs: Mapping[str, torch.Tensor], *, overwrite: bool = False) -> Path:
    """Write the two tensors run_model reads, input_ids and attention_mask, from a tokenizer's output."""
    missing = [name for name in INPUT_NAMES if name not in inputs]
    if missing:
        raise KeyError(f"inputs has no {', '.join(missing)}: pass the tokenizer's output "
                       "(tokenizer(texts, padding=True, return_tensors='pt')) or a dict with both")
    return write_tensors(path, {name: inputs[name] for name in INPUT_NAMES}, overwrite=overwrite)


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a tensor-text file into {name: tensor}; a clear ValueError if it is malformed."""
    path = Path(path)
    lines = path.read_text().splitlines()
    if not lines or lines[0].split() != FORMAT_LINE.split():
        raise ValueError(f"{path}: the first line is not '{FORMAT_LINE}': not a tensor-text file")
    rows = [line.split() for line in lines[1:] if line.strip() and not line.lstrip().startswith("#")]
    tensors = {}
    while rows:
        name, dtype, *dims = rows.pop(0)  # a header: name, dtype, shape
        shape = [int(d) for d in dims]
        width = shape[-1] if shape else 1
        count = math.prod(shape) // width
        block, rows = rows[:count], rows[count:]  # [count rows of width values]
        if len(block) < count or any(len(row) != width for row in block):
            raise ValueError(f"{path}: {name} should be {count} rows of {width} values (shape {shape})")
        parse, kind = (float, torch.float32) if dtype == "float32" else (int, torch.int64)
        tensors[name] = torch.tensor([parse(v) for row in block for v in row], dtype=kind).reshape(shape)
    return tensors


def missing_tools() -> str | None:
    """Why the C++ program cannot be built here (no CMake, no C++ compiler), or None if it can."""
    if shutil.which("cmake") is None:
        return "cmake is not installed: install it (apt install cmake, brew install cmake or pip install cmake)"
    compilers = [os.environ.get("CXX", ""), "c++", "g++", "clang++"]
    if not any(shutil.which(c) for c in compilers if c):
        return "no C++ compiler found (looked for $CXX, c++, g++, clang++): install one, e.g. apt install g++"
    return None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold a file lock in `folder`, so a test run and a notebook never build into it at the same time."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _cmake(*args: str | Path) -> None:
    done = subprocess.run(["cmake", *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BuildError(f"cmake {' '.join(map(str, args[:2]))} failed:\n{tail}")


def source_dir() -> Path:
    """The C++ sources: the checkout's `cpp/` (found from the current folder) or $COURSE_CPP."""
    return course.locate("cpp", SETTING)


def default_binary() -> Path:
    """Where `build()` puts run_model by default: `cpp/build/run_model`."""
    return source_dir() / "build" / "run_model"


def build(build_dir: str | os.PathLike | None = None) -> Path:
    """Configure (once) and build cpp/ against this venv's LibTorch; return the run_model binary.

    Safe to repeat: CMake rebuilds only what changed, so a built tree costs well under a second.
    """
    reason = missing_tools()
    if reason:
        raise BuildError(reason)
    build_dir = Path(build_dir) if build_dir else default_binary().parent
    with _locked(build_dir):
        cache = build_dir / "CMakeCache.txt"
        if cache.exists() and torch.utils.cmake_prefix_path not in cache.read_text():
            cache.unlink()  # configured against another torch (a moved or rebuilt venv): start over
        if not cache.exists():
            prefix = f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"
            _cmake("-S", source_dir(), "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release", prefix)
        _cmake("--build", build_dir, "--parallel", str(os.cpu_count() or 1))
    return build_dir / "run_model"


def _error_text(stderr: str) -> str:
    """The program's own message: stderr from its first `error:` line on (LibTorch may print before it)."""
    lines = stderr.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
    return "\n".join(lines[starts[0] if starts else 0:])


def _split_log(stdout: str) -> tuple[list[float], list[str]]:
    """(per-call seconds from the `run_seconds:` line, the rest of what the program printed but its `runs:` line,
    a live timing whose numbers `CppRun.timing` holds)."""
    timed = [line for line in stdout.splitlines() if line.startswith("run_seconds:")]
    if not timed:
        raise CppError(f"run_model printed no run_seconds line:\n{stdout}", 0)
    rest = [line for line in stdout.splitlines() if not line.startswith(("run_seconds:", "runs:"))]
    return [float(s) for s in timed[0].split()[1:]], rest


def run(
    model_path: str | os.PathLike,
    inputs_path: str | os.PathLike,
    outputs_path: str | os.PathLike,
    *,
    warmup: int = 0,
    repeat: int = 1,
    threads: int | None = None,
    shapes: str = "refuse",
    overwrite: bool = False,
    binary: str | os.PathLike | None = None,
) -> CppRun:
    """Run the C++ program on a .pt or .pt2 model and a tensor-text inputs file; read back its outputs.

    It calls the model `warmup` times untimed, then `repeat` times timed, with `threads` intra-op threads
    (default: the same as this Python process, so timings compare fairly). `shapes="warn"` runs a .pt at input
    shapes its manifest does not list, with a warning in the log (as `files.load(path, shapes="warn")`).
    """
    binary = binary or default_binary()
    if not Path(binary).exists():
        raise FileNotFoundError(f"{binary} is not built yet: run `make cpp` or helpers.cpp.build()")
    if shapes not in ("refuse", "warn"):
        raise ValueError(f"shapes={shapes!r}: choose 'refuse' or 'warn'")
    threads = threads or torch.get_num_threads()
    command = [str(binary), str(model_path), str(inputs_path), str(outputs_path), "--warmup", str(warmup),
               "--repeat", str(repeat), "--threads", str(threads), "--shapes", shapes]
    done = subprocess.run(command + ["--overwrite"] * overwrite, capture_output=True, text=True)
    if done.returncode != 0:
        message = _error_text(done.stderr) or f"run_model exited with code {done.returncode} and no message"
        raise CppError(message, done.returncode)
    seconds, log = _split_log(done.stdout)  # stderr may hold LibTorch warnings: keep them visible
    timed = timing.summarize(seconds)
    timed.threads = threads
    return CppRun(list(read_tensors(outputs_path).values()), timed, "\n".join(log + done.stderr.splitlines()))


if __name__ == "__main__":  # `make cpp`
    try:
        print(f"built {build()}")
    except BuildError as err:
        sys.exit(f"make cpp: {err}")
