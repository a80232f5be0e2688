"""Chores every notebook shares: seeding and the versions line, scratch folders, settings, warnings, exercises.

Introduced in notebook 01. Also the two context managers the rest of `helpers` uses to change global state and
put it back: `threads(n)` (torch's intra-op thread count) and `transformers_quiet()` (transformers' logger).
The exercises' reference checks, which `check` runs, live in `course.exercises`, out of the notebooks' sight.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import platform
import random
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

KNOWN_NOISE: tuple[tuple[type[Warning], str], ...] = (
    # torch 2.13 deprecates every torch.jit entry point in favour of torch.export / torch.compile.
    (DeprecationWarning, r"`torch\.jit\.\w+` is deprecated"),
    # transformers builds the attention mask with torch.tensor(1.0): a constant, correctly recorded.
    (torch.jit.TracerWarning, r"torch\.tensor results are registered as constants"),
)
"""(category, message regex) pairs explained in notebook 01; `known_noise()` hides exactly these."""


def release(version: str) -> str:
    """'2.13.0' for '2.13.0+cpu': the release without the build tag, which differs between platforms."""
    return version.split("+")[0]


def versions() -> dict[str, str]:
    """Versions that decide whether a saved file loads and what a notebook prints: python, torch, transformers."""
    import transformers

    python = ".".join(platform.python_version_tuple()[:2])
    return {"python": python, "torch": torch.__version__, "transformers": transformers.__version__}


def setup(seed: int = 0) -> None:
    """Seed Python, NumPy and torch, and print the library versions that decide what the notebook shows.

    In a notebook, also shortens tracebacks to the error line (IPython's `%xmode Minimal`): the course's cells
    that teach an error show its type and message, not pages of library frames. `%xmode Context` brings the
    full tracebacks back for your own debugging. And it sends the process's temporary files to its
    `scratch_root()` (`temporary_files_in`), so that none outlive it.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is not None:
        shell.InteractiveTB.set_mode("Minimal")  # what %xmode Minimal does, without printing a line
    temporary_files_in(scratch_root())
    found = versions()
    print(f"torch {release(found['torch'])} | transformers {found['transformers']} | seed {seed}")


SCRATCH = "torchscript-course"
"""The folder, in the system's temporary folder, that holds one scratch folder per running course process."""
_SYSTEM_TEMP = Path(tempfile.gettempdir())
_root: Path | None = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def scratch_root() -> Path:
    """This process's scratch folder, `<system temp>/torchscript-course/<pid>`, removed when the process exits.

    A Jupyter kernel that is killed (as test runners and "Restart kernel" may do) runs no exit handlers, so
    making a root first removes the roots of processes that no longer run: crashed runs don't fill the disk.
    """
    global _root
    if _root is None:
        base = _SYSTEM_TEMP / SCRATCH
        for stale in base.glob("*"):
            if stale.name.isdigit() and not _alive(int(stale.name)):
                shutil.rmtree(stale, ignore_errors=True)
        _root = base / str(os.getpid())
        _root.mkdir(parents=True, exist_ok=True)
        atexit.register(shutil.rmtree, _root, ignore_errors=True)
    return _root


def temporary_files_in(folder: Path) -> None:
    """Send this process's temporary files to `folder`: Python's `tempfile`, and `TMPDIR` for native code and
    child processes (AOTInductor unpacks every package it loads into a new temporary folder, never removed
    if the process is killed). Inductor's compile cache stays where it was, shared between runs."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # before tempfile moves
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)


def workdir(prefix: str) -> Path:
    """A fresh scratch folder for a notebook's files, in `scratch_root()`: removed when the process exits.

    Notebooks save models here rather than beside themselves, so re-running never meets (or overwrites) an
    earlier run's files, and repeated runs don't fill the disk.
    """
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=scratch_root()))


def locate(relative: str, setting: str) -> Path:
    """A folder of this course's checkout (e.g. "benchmarks/results", "cpp"): the environment variable `setting`
    if set, else `relative` under the current folder or the nearest parent that has it.

    Notebooks run in `notebooks/`, scripts at the top of the checkout; both find it. An installed copy of
    `helpers` used elsewhere sets the variable.
    """
    if os.environ.get(setting):
        return Path(os.environ[setting])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / relative).is_dir():
            return folder / relative
    raise FileNotFoundError(f"no {relative}/ folder in {here} or above it: run from the course's checkout, or "
                            f"set the environment variable {setting} to the folder")


BUILD_SETTING = "COURSE_BUILD"
"""Environment variable naming the folder `build_folder` uses instead of the checkout's `notebooks/build`."""


def build_folder(name: str) -> Path:
    """`notebooks/build/<name>` of this checkout, created if missing: where a notebook keeps what is slow to
    build (an AOTInductor package) from one run to the next. Git ignores it; `make clean` empties it.

    The same folder whether the notebook runs in `notebooks/`, in `notebooks/ar/` or from the checkout's top.
    """
    if os.environ.get(BUILD_SETTING):
        folder = Path(os.environ[BUILD_SETTING]) / name
    else:
        folder = locate("notebooks", BUILD_SETTING) / "build" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    """Run the block with `torch.set_num_threads(count)`; the previous count is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def transformers_quiet() -> Iterator[None]:
    """Run the block with transformers' logger at errors only; its previous level is restored afterwards.

    Does not import transformers where nothing has: a process that only loads saved files stays free of it.
    """
    if "transformers" not in sys.modules:
        yield
        return
    import transformers

    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)


@contextlib.contextmanager
def known_noise() -> Iterator[None]:
    """Inside this block, hide the `KNOWN_NOISE` warnings; every other warning still shows.

    Also turns transformers' logger down to errors: the tracer reads every property of a model, and
    `PreTrainedModel.loss_function` logs "`loss_type=None` was set in the config…" when read.
    """
    with transformers_quiet(), warnings.catch_warnings():
        for category, message in KNOWN_NOISE:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


@contextlib.contextmanager
def show_once(first_line: bool = False) -> Iterator[list[str]]:
    """Record the warnings raised inside the block; afterwards print each distinct one once, without paths.

    Use where a warning is the lesson: the reader sees its category and message, not a wall of repeats.
    `first_line=True` prints only each message's first line, for messages whose details change from run to
    run (a TracerWarning's mismatch counts under random dropout).
    """
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield seen
    for warning in caught:
        message = str(warning.message).splitlines()[0] if first_line else warning.message
        line = f"{warning.category.__name__}: {message}"
        if line not in seen:
            seen.append(line)
            print(line)


def check(answer: Any, exercise: str, hint: str, **context: Any) -> bool | None:
    """Self-check for an exercise: 'not attempted' while `answer` is None, else run exercise `exercise`'s check
    ("05.1": notebook 05's first, in `course.exercises`) on it, with `context`, the notebook's objects it reads.

    Prints one line and returns None (not attempted), True (passed) or False (not yet, with `hint`). An unknown
    id, or a `context` the check does not take, raises at once, also while the exercise is unattempted.
    """
    from helpers.course import exercises  # here, not at the top: the checks import most of helpers

    test = exercises.bound(exercise, context)
    if answer is None:
        print("not attempted yet: replace None with your answer and re-run this cell")
        return None
    try:
        passed = bool(test(answer))
    except Exception as err:  # an exercise answer of the wrong kind should teach, not crash
        print(f"not yet: checking your answer raised {type(err).__name__}: {err}. Hint: {hint}")
        return False
    print("correct!" if passed else f"not yet. Hint: {hint}")
    return passed
