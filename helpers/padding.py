"""Padding policies and what they cost: pad every request to one length, to a few buckets, or not at all.

Introduced in notebook 02; `benchmarks/padding.py` runs the same functions on the whole shipped corpus.
Every policy is a `helpers.shapes.BucketedModel`: "pad to 512" is one bucket of 512, "exact length" is a
bucket for every length, so all four run the same code and differ only in how much padding they compute.
They are timed with `helpers.timing.compare`, interleaved. matplotlib and ipywidgets load only when used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from helpers import shapes, timing, tracing

POLICIES: dict[str, tuple[int, ...] | None] = {
    "pad to 512": (512,),
    "pad to 128": (128,),
    "buckets": (16, 32, 64, 128),
    "exact length": None,  # a bucket for every length: no padding, and as many shapes as lengths
}
BASELINE = "exact length"
RawTraces = Mapping[str, tuple[torch.jit.ScriptModule, torch.nn.Module]]
"""name -> (a trace, the eager model it came from), for the explorer's verdicts."""


def policy_buckets(policy: str, limit: int = 512) -> tuple[int, ...]:
    """The bucket lengths of a policy in `POLICIES`; 'exact length' gets every length 1..limit."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}: choose one of {list(POLICIES)}")
    return POLICIES[policy] or tuple(range(1, limit + 1))


def servers(model: torch.nn.Module, traced: torch.jit.ScriptModule | None = None, max_batch: int = 8,
            policies: Sequence[str] = tuple(POLICIES)) -> dict[str, shapes.BucketedModel]:
    """One BucketedModel per policy, all starting from the same trace (each verifies it at its own shapes)."""
    limit = getattr(model.config, "max_position_embeddings", 512)
    return {p: shapes.BucketedModel(model, policy_buckets(p, limit), max_batch, traced=traced) for p in policies}


def arrivals(requests: Sequence[torch.Tensor], max_batch: int = 8) -> list[list[torch.Tensor]]:
    """Requests in the order they arrive, in groups of `max_batch` that arrive together."""
    return [list(requests[i : i + max_batch]) for i in range(0, len(requests), max_batch)]


def tokens_computed(lengths: Sequence[int], buckets: Sequence[int]) -> int:
    """Token positions the model computes when every request is padded to its bucket."""
    return sum(shapes.bucket_for(n, buckets) for n in lengths)


def warm_up(server: shapes.BucketedModel, groups: Sequence[Sequence[torch.Tensor]], times: int = 2) -> None:
    """Serve, `times` each, the groups that bring a batch shape not seen before: every shape gets traced or
    verified, and the TorchScript executor has optimised it, before anything is timed."""
    seen: set[tuple[int, int]] = set()
    for group in groups:
        shapes = {(len(chunk), bucket) for bucket, chunk in server.plan(group)}
        if shapes - seen:
            for _ in range(times):
                server(group)
            seen |= shapes


def one_pass(server: shapes.BucketedModel, groups: Sequence[Sequence[torch.Tensor]]) -> timing.Candidate:
    """A candidate for `timing.compare` whose one call serves every group of requests, in order."""
    def run() -> None:
        for group in groups:
            server(group)
    return timing.Candidate(run)


def time_policies(servers: Mapping[str, shapes.BucketedModel], groups: Sequence[Sequence[torch.Tensor]],
            rounds: int = 5, warmup: int = 2) -> timing.Comparison:
    """Seconds per pass over `groups`, per policy, after `warm_up(server, groups, warmup)`: `timing.compare`
    with the policies taking turns each round, baseline "exact length" when it is one of them."""
    for server in servers.values():
        warm_up(server, groups, warmup)
    candidates = {name: one_pass(server, groups) for name, server in servers.items()}
    baseline = BASELINE if BASELINE in servers else None
    return timing.compare(candidates, baseline=baseline, warmup=0, repeat=rounds, progress=False)


def table(comparison: timing.Comparison, lengths: Sequence[int], limit: int = 512) -> list[dict[str, Any]]:
    """One row per policy: shapes it needs, tokens computed, padding share, timing, cost vs exact length."""
    rows, real = [], sum(lengths)
    for row in comparison.rows:
        buckets = policy_buckets(row.name, limit)
        computed = tokens_computed(lengths, buckets)
        rows.append({
            "policy": row.name, "shapes": len({shapes.bucket_for(n, buckets) for n in lengths}),
            "tokens": computed, "padding": 1 - real / computed, **timing.clock.as_dict(row.timing),
            "vs_exact": comparison.paired_ratio(row.name) if comparison.baseline == BASELINE else None,
        })
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """The policy table as aligned text."""
    header = ("policy", "lengths", "tokens", "padding", "median", "p10-p90", "vs exact")
    lines = ["{:<13} {:>7} {:>7} {:>7} {:>9} {:>17} {:>8}".format(*header)]
    for r in rows:
        spread = f"{r['p10'] * 1e3:.0f}-{r['p90'] * 1e3:.0f} ms"
        ratio = f"{r['vs_exact']:.2f}x" if r["vs_exact"] is not None else "-"
        lines.append(f"{r['policy']:<13} {r['shapes']:>7} {r['tokens']:>7} {r['padding']:>7.0%} "
                     f"{r['median'] * 1e3:>6.0f} ms {spread:>17} {ratio:>8}")
    return "\n".join(lines)


def machines_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Every machine's committed policy results side by side (as `timing.read_all("padding")` returns them): one
    provenance line per machine, then per policy the work (the same on every machine) and, per machine, the median
    time of one pass over the corpus and its cost vs exact length."""
    if not results:
        return "no committed padding results yet: run `make bench` to measure this machine"
    lines = [f"{name}: {r['provenance']['machine']}, {r['provenance']['threads']} threads, {r['provenance']['date']}"
             for name, r in results.items()]
    width = max(16, *(len(name) for name in results))
    lines.append(f"{'policy':<13} {'lengths':>7} {'tokens':>7} {'padding':>7}"
                 + "".join(f"  {name:>{width}}" for name in results))
    by_machine = [{row["policy"]: row for row in r["policies"]} for r in results.values()]
    for row in next(iter(results.values()))["policies"]:
        same_policy = [rows[row["policy"]] for rows in by_machine]
        cells = [f"{r['median']:.1f} s, {r['vs_exact']:.2f}x" for r in same_policy]
        lines.append(f"{row['policy']:<13} {row['shapes']:>7} {row['tokens']:>7} {row['padding']:>7.0%}"
                     + "".join(f"  {cell:>{width}}" for cell in cells))
    return "\n".join(lines)


def latency_curve(traced: torch.jit.ScriptModule, tokenizer: PreTrainedTokenizerBase, lengths: Sequence[int],
                  batch: int = 1, warmup: int = 1, repeat: int = 5) -> dict[int, timing.Timing]:
    """Measured latency of one call at [batch, length] for each length (real token ids, full mask)."""
    curve = {}
    for length in lengths:
        example = shapes.dummy_inputs(tokenizer, (batch, length))
        curve[length] = timing.measure(lambda: traced(*example), warmup=warmup, repeat=repeat)
    return curve


def plot_latency(curve: Mapping[int, timing.Timing], title: str, buckets: Sequence[int] = POLICIES["buckets"],
                 ax: Any = None) -> Any:
    """Median latency vs sequence length with the p10-p90 band; dotted lines at the bucket lengths."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    lengths = sorted(curve)
    ax.plot(lengths, [curve[n].median * 1e3 for n in lengths], marker="o", label="median")
    ax.fill_between(lengths, [curve[n].p10 * 1e3 for n in lengths], [curve[n].p90 * 1e3 for n in lengths],
                    alpha=0.3, label="p10-p90")
    for bucket in buckets:
        ax.axvline(bucket, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="sequence length (tokens)", ylabel="ms per call", title=title)
    ax.legend()
    return ax


def plot_policies(rows: Sequence[dict], title: str, ax: Any = None) -> Any:
    """Median seconds per policy (log scale), with p10-p90 whiskers."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    medians = [r["median"] for r in rows]
    errors = [[r["median"] - r["p10"] for r in rows], [r["p90"] - r["median"] for r in rows]]
    ax.bar([r["policy"] for r in rows], medians, yerr=errors, capsize=4)
    ax.set(yscale="log", ylabel="seconds per pass (log)", title=title)
    return ax


def raw_verdict(traced: torch.jit.ScriptModule, model: torch.nn.Module, batch: int, length: int) -> str:
    """What a trace does at [batch, length], compared with its eager model: matches, wrong numbers, or raises."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and length > limit:
        return f"cannot run: the model has {limit} positions"
    row = tracing.verify(traced, model, [shapes.random_inputs(model, batch, length)], raise_on_mismatch=False).rows[0]
    if row.error:
        return f"raises {row.error}"
    if row.ok:
        return f"matches eager ({row.closeness})"
    return f"WRONG numbers, silently: max |diff| {row.max_abs_diff:.2f}"


def shape_report(traced: torch.jit.ScriptModule, tokenizer: PreTrainedTokenizerBase, raw: RawTraces,
                 batch: int, length: int, cache: dict[tuple[int, int], float]) -> str:
    """Per policy: the shape it runs for `batch` requests of `length` tokens, its padding and measured latency
    (on `traced`, cached per shape in `cache`); then each raw trace's verdict at that shape."""
    lines = [f"{batch} request(s) of {length} tokens:"]
    for policy in POLICIES:
        buckets = policy_buckets(policy)
        if length > buckets[-1]:
            lines.append(f"  {policy:<13} cannot serve it: largest bucket is {buckets[-1]}")
            continue
        padded = shapes.bucket_for(length, buckets)
        if (batch, padded) not in cache:
            example = shapes.dummy_inputs(tokenizer, (batch, padded))
            cache[batch, padded] = timing.measure(lambda: traced(*example), warmup=1, repeat=3).median
        lines.append(f"  {policy:<13} runs {batch}x{padded:<4} {1 - length / padded:>4.0%} padding  "
                     f"{cache[batch, padded] * 1e3:7.1f} ms")
    lines += [f"  raw {name} trace: {raw_verdict(t, m, batch, length)}" for name, (t, m) in raw.items()]
    return "\n".join(lines)


def explorer(traced: torch.jit.ScriptModule, tokenizer: PreTrainedTokenizerBase, raw: RawTraces,
             length: int = 24, batch: int = 1) -> Any:
    """Sliders for request length and batch size; below them, `shape_report` for the chosen shape (live)."""
    import ipywidgets as widgets

    sliders = [widgets.IntSlider(length, min=3, max=512, description="length", continuous_update=False),
               widgets.IntSlider(batch, min=1, max=8, description="batch", continuous_update=False)]
    out, cache = widgets.Output(), {}

    def show(_: object = None) -> None:
        with out:
            out.clear_output(wait=True)
            print(shape_report(traced, tokenizer, raw, sliders[1].value, sliders[0].value, cache))

    for slider in sliders:
        slider.observe(show, "value")
    show()
    return widgets.VBox([*sliders, out])
