"""Chores every notebook shares: seeding, the versions line, and self-checking exercises."""

from __future__ import annotations

import atexit
import platform
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers


def setup(seed: int = 0) -> None:
    """Seed Python, NumPy and torch, and print the versions that decide what the notebook shows."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    print(
        f"python {'.'.join(platform.python_version_tuple()[:2])} | torch {torch.__version__} | "
        f"transformers {transformers.__version__} | seed {seed}"
    )


def workdir(prefix: str) -> Path:
    """A fresh scratch folder for a notebook's files, removed when the kernel exits.

    Notebooks save models here rather than beside themselves, so re-running never meets (or overwrites) an
    earlier run's files, and repeated runs don't fill the disk.
    """
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def check(answer: Any, test: Callable[[Any], bool], hint: str) -> bool | None:
    """Self-check for an exercise: 'not attempted' while `answer` is None, else run `test` on it.

    Prints one line and returns None (not attempted), True (passed) or False (not yet, with `hint`).
    """
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
