"""Pictures of timings: speedup bars with accuracy labels, and achieved GFLOP/s under the measured peaks.

Introduced in notebook 05. matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.timing.comparison import Comparison


def plot(comparison: Comparison, ax: Any = None, title: str = "") -> Any:
    """Horizontal bars of per-sample speedup vs the baseline, each labelled with its cosine; flagged rows hatched."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 0.35 * len(comparison.rows) + 1))[1]
    rows = comparison.rows[::-1]  # first row on top
    bars = ax.barh([r.name for r in rows], [r.speedup for r in rows], color="tab:blue")
    for bar, row in zip(bars, rows):
        bar.set_hatch("" if row.status == "ok" else "//")
        bar.set_alpha(1.0 if row.status == "ok" else 0.4)
        label = f" {row.speedup:.2f}x" + (f"  cos {row.cosine:.4f}" if row.cosine is not None else "")
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=8)
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.set_xlabel(f"speedup per sample vs {comparison.baseline} (higher is better)")
    ax.set_title(title)
    return ax


def roofline(achieved: Mapping[str, float], peaks: Mapping[str, float], ax: Any = None, title: str = "") -> Any:
    """Achieved GFLOP/s per path (bars) under the machine's measured matmul peaks (dashed lines)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 0.3 * len(achieved) + 1.2))[1]
    ax.barh(list(achieved)[::-1], list(achieved.values())[::-1], color="tab:green")
    for (label, peak), colour in zip(peaks.items(), ["tab:red", "tab:purple", "tab:orange"]):
        ax.axvline(peak, ls="--", color=colour, label=f"{label} matmul peak {peak:.0f} GFLOP/s")
    ax.set_xlabel("GFLOP/s achieved (encoder FLOPs / median time)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    return ax
