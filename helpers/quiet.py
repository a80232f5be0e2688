"""Silence only the warnings the course has already explained, and only where asked.

Notebook 01 shows TorchScript's deprecation notice and transformers' TracerWarnings once and explains
them; later cells wrap their chores in `known_noise()` so new, unexplained warnings still surface.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
import transformers

KNOWN_NOISE: tuple[tuple[type[Warning], str], ...] = (
    # torch 2.13 deprecates every torch.jit entry point in favour of torch.export / torch.compile.
    (DeprecationWarning, r"`torch\.jit\.\w+` is deprecated"),
    # transformers builds the attention mask with torch.tensor(1.0): a constant, correctly recorded.
    (torch.jit.TracerWarning, r"torch\.tensor results are registered as constants"),
)
"""(category, message regex) pairs explained in notebook 01."""


@contextlib.contextmanager
def known_noise() -> Iterator[None]:
    """Inside this block, hide the `KNOWN_NOISE` warnings; every other warning still shows.

    Also turns transformers' logger down to errors: the tracer reads every property of a model, and
    `PreTrainedModel.loss_function` logs "`loss_type=None` was set in the config…" when read.
    """
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            for category, message in KNOWN_NOISE:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        transformers.logging.set_verbosity(level)


@contextlib.contextmanager
def show_once() -> Iterator[list[str]]:
    """Record the warnings raised inside the block; afterwards print each distinct one once, without paths.

    Use where a warning is the lesson: the reader sees its category and message, not a wall of repeats.
    """
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield seen
    for warning in caught:
        line = f"{warning.category.__name__}: {warning.message}"
        if line not in seen:
            seen.append(line)
            print(line)
