"""What padding costs: pad to 512, pad to 128, buckets (16/32/64/128) and exact length on the shipped corpus.

Run: `make bench` (all benchmarks) or `.venv/bin/python benchmarks/padding.py [--quick]`.
Model: the shipped all-MiniLM-L6-v2 (real weights), traced once; every policy is a
`helpers.shapes.BucketedModel` that reuses that trace after verifying it at each shape it serves.
Workload: every request in helpers/data/corpus.txt, in file order, arriving in groups of 8; one pass
serves them all. Policies take turns each round (helpers.padding.time_policies, on helpers.timing.compare), so
the ratios are measured in one run under the same noise. Also measures latency vs sequence length at batch 1.
Writes benchmarks/results/<this machine>/padding.json and padding.png (notebook 02 shows every machine's) and
prints the table; this machine's earlier results are kept beside them, renamed with the time they were measured.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

from helpers import models, padding, shapes, timing, tracing  # noqa: E402

COMMAND = "make bench  (.venv/bin/python benchmarks/padding.py)"
CURVE_LENGTHS = (8, 16, 32, 64, 128, 256, 512)


def run(quick: bool) -> dict:
    """Measure every policy on the corpus and the latency curve; return the JSON-ready result."""
    model, tokenizer = models.load_model(models.SHIPPED_NAME)
    texts = shapes.load_corpus()[: 48 if quick else None]
    requests = [tokenizer(text, return_tensors="pt")["input_ids"][0] for text in texts]  # 1-D int64 each
    lengths = [len(r) for r in requests]
    traced = tracing.trace(model, shapes.dummy_inputs(tokenizer, (8, 128)))
    runs = padding.time_policies(padding.servers(model, traced), padding.arrivals(requests),
                                 rounds=2 if quick else 3)
    rows = padding.table(runs, lengths)
    curve = padding.latency_curve(traced, tokenizer, CURVE_LENGTHS, repeat=5 if quick else 15)
    return {
        "benchmark": "padding",
        "model": models.SHIPPED_NAME,
        "workload": {"requests": len(requests), "tokens": sum(lengths), "max_batch": 8, "min_length": min(lengths),
                     "median_length": sorted(lengths)[len(lengths) // 2], "max_length": max(lengths)},
        "policies": rows,
        "targets": {
            "buckets_vs_exact": runs.paired_ratio("buckets"),  # target <= 1.15
            "pad512_vs_buckets": runs.paired_ratio("pad to 512", "buckets"),  # target >= 8
        },
        "runs": {row.name: row.timing.runs for row in runs.rows},
        "latency_batch1": {str(n): timing.clock.as_dict(t) for n, t in curve.items()},
    }


def plot(result: dict, path: Path) -> None:
    """Latency vs length (left) and cost per policy (right), labelled with the machine and date."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    curve = {int(n): timing.summarize(t["runs"]) for n, t in result["latency_batch1"].items()}
    padding.plot_latency(curve, "MiniLM trace, batch 1", ax=left)
    workload = f"{result['workload']['requests']} corpus requests, groups of {result['workload']['max_batch']}"
    padding.plot_policies(result["policies"], workload, ax=right)
    prov = result["provenance"]
    fig.suptitle(f"{prov['machine']}, torch threads: {prov['threads']}, {prov['date']}: {prov['command']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="48 requests, 2 rounds: a smoke test (not saved)")
    args = parser.parse_args()
    start = time.perf_counter()
    result = run(args.quick)
    result["provenance"] = {**timing.provenance(COMMAND),
                            "seconds": round(time.perf_counter() - start, 1)}
    print(padding.format_table(result["policies"]))
    targets = result["targets"]
    print(f"buckets cost {targets['buckets_vs_exact']:.2f}x exact length (target <= 1.15x); "
          f"pad to 512 costs {targets['pad512_vs_buckets']:.1f}x buckets (target >= 8x)")
    if args.quick:
        print("--quick: results not saved")
        return
    json_path = timing.results.write("padding", result)
    plot(result, json_path.with_suffix(".png"))
    print(f"wrote {json_path} and padding.png in {result['provenance']['seconds']:.0f} s")

if __name__ == "__main__":
    main()
