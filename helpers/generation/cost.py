"""What one generation step costs: the traced fixed-length step, eager without a cache, eager with a KV cache.

Introduced in notebook 07. `generate()` keeps each layer's keys and values (the KV cache) and feeds the
decoder only the newest token; the traced step has fixed shapes, so it re-runs the decoder over all
`max_length` positions at every step. `measure_steps` times one step of each kind at several positions
with `helpers.timing.measure`, in one run, so their ratios are comparable.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import PreTrainedModel

from helpers import course
from helpers.generation.traced import TracedCausalLM
from helpers.timing import Timing, measure

KINDS = ("traced, fixed length", "eager, no cache", "eager, KV cache")


def step_functions(model: PreTrainedModel, traced: TracedCausalLM, ids: torch.Tensor, position: int
                   ) -> dict[str, Callable[[], object]]:
    """One step that predicts token `position` from ids[:, :position], three ways (ids: [B, max_length])."""
    mask = torch.ones_like(ids)
    index = torch.tensor([position - 1])
    with torch.no_grad():
        cache = model(input_ids=ids[:, :position - 1], use_cache=True).past_key_values  # the first position - 1

    def traced_step():
        return traced.modules["step.pt"](ids, mask, index)  # all max_length positions, every time

    def uncached_step():
        return model(input_ids=ids[:, :position], use_cache=False, logits_to_keep=1)  # positions 0..position-1

    def cached_step():
        out = model(input_ids=ids[:, position - 1:position], past_key_values=cache, use_cache=True)  # 1 token
        cache.crop(position - 1)  # forget it again, so every timed call does the same work
        return out

    return dict(zip(KINDS, (traced_step, uncached_step, cached_step)))


def measure_steps(model: PreTrainedModel, traced: TracedCausalLM, positions: list[int], batch: int = 1,
                  warmup: int = 2, repeat: int = 5, threads: int = 1) -> dict[str, list[Timing]]:
    """Step time of each kind at each position, on `threads` threads: {kind: [Timing per position]}.

    One thread by default: when other processes share the cores, a two-thread kernel waits for whichever
    thread was descheduled, and the many small ops of an eager step swung several-fold from run to run on
    the course's 2-core machine. Notebook 05 measures what a second thread buys.
    """
    ids = torch.randint(0, model.config.vocab_size, (batch, traced.max_length),
                        generator=torch.Generator().manual_seed(0))
    timings: dict[str, list[Timing]] = {kind: [] for kind in KINDS}
    with course.threads(threads):
        for position in positions:
            for kind, step in step_functions(model, traced, ids, position).items():
                timings[kind].append(measure(step, warmup=warmup, repeat=repeat))
    return timings


def plot_steps(positions: list[int], timings: dict[str, list[Timing]], title: str) -> None:
    """Step time (median, with p10-p90 bars) against the position being generated."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for kind, runs in timings.items():
        median = [t.median * 1e3 for t in runs]
        spread = [[(t.median - t.p10) * 1e3 for t in runs], [(t.p90 - t.median) * 1e3 for t in runs]]
        ax.errorbar(positions, median, yerr=spread, marker="o", capsize=3, label=kind)
    ax.set(xscale="log", xlabel="position being generated", ylabel="ms per step", title=title)
    ax.set_xticks(positions, [str(p) for p in positions])
    ax.minorticks_off()
    ax.legend()
    fig.tight_layout()
