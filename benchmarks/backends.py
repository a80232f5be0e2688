"""Every CPU path for a BERT encoder, timed interleaved in one process, accuracy beside every speed.

Run: `make bench` (all benchmarks) or `.venv/bin/python benchmarks/backends.py [--quick]`.
Writes benchmarks/results/backends.json and timing.png (notebook 05 shows them) and prints the tables.
Models: the shipped all-MiniLM-L6-v2 (real weights) and a BERT-base built from its config (random
weights, same shapes as bert-base-uncased). Accuracy: lowest cosine of 16 mean-pooled sentence
embeddings vs fp32 eager, and the max |diff| of the hidden states on real tokens.

Traps handled: AOTInductor packages are compiled in subprocesses, one per variant (compile cost measured
there, no dynamo state shared); Inductor freezing is set in `torch._inductor.config` (not torch.compile's
options); Inductor's cache goes to a fresh folder so compile times are cold; the guard in
`helpers.timing.compare` flags any compiled path that recompiled or ran the model's Python code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="course05-inductor-"))

import torch  # noqa: E402  (after the cache folder is chosen)
from transformers import AutoModel  # noqa: E402

from helpers import course, export, models, timing  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAUSE = 0.02  # seconds between timed calls, so one runtime's idle threads stop spinning before the next runs
COMMAND = "make bench  (.venv/bin/python benchmarks/backends.py{})"


def load(name: str, attention: str = "sdpa"):
    """(model, tokenizer): 'minilm' is the shipped real model; 'bert-base' is config-built, random weights.

    `attention="eager"` builds BERT's attention from plain matmul + softmax instead of
    scaled_dot_product_attention, leaving Inductor to fuse it."""
    if name == "minilm" and attention == "eager":
        model, tokenizer = models.load_model(models.SHIPPED_NAME)
        path = models.shipped_model_path()
        return AutoModel.from_pretrained(path, torchscript=True, attn_implementation="eager").eval(), tokenizer
    if name == "minilm":
        return models.load_model(models.SHIPPED_NAME)
    _, tokenizer = models.load_model(models.SHIPPED_NAME)  # same uncased WordPiece vocabulary as bert-base
    model = models.tiny_model("bert", task="base", torchscript=True, vocab_size=30522, hidden_size=768,
                              num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                              max_position_embeddings=512)
    print("built bert-base from its config (random weights, seed 0): 12 layers, hidden 768")
    return model, tokenizer


def build_aoti_child(spec: dict) -> None:
    """Subprocess entry: export + AOT-compile one variant, print the seconds it took as JSON."""
    model, tokenizer = load(spec["model"], spec.get("attention", "sdpa"))
    model = model.to(getattr(torch, spec["dtype"]))
    inputs = timing.sentence_inputs(tokenizer, timing.SENTENCES[: spec["batch"]], spec["seq"])
    program = export.export_program(model, inputs, dynamic=False)
    manifest = export.package(program, spec["path"], max_autotune=spec["autotune"])
    print(json.dumps({"seconds": manifest["compile_seconds"]}))


def aoti(spec: dict, folder: Path) -> timing.Candidate:
    """Build an AOTInductor package in a fresh subprocess and load it here."""
    name = "-".join(str(value) for value in spec.values())
    spec = {**spec, "path": str(folder / f"{name}.pt2")}
    done = subprocess.run([sys.executable, __file__, "--build-aoti", json.dumps(spec)], capture_output=True,
                          text=True, timeout=1200, env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())})
    if done.returncode != 0:
        raise RuntimeError(f"AOTInductor build failed for {spec}:\n{done.stderr[-3000:]}")
    seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    package = export.load_package(spec["path"])  # checked against its manifest, shapes included
    return timing.Candidate(package, setup_s=seconds, note="max_autotune" if spec["autotune"] else "")


def optional(name: str, build, candidates: dict, skipped: dict) -> None:
    """Add a candidate whose engine may be missing (OpenVINO); record why it was skipped."""
    try:
        candidates[name] = build()
    except ImportError as err:
        skipped[name] = str(err)
        print(f"skipped {name}: {err}")


def with_threads(candidate: timing.Candidate, threads: int) -> timing.Candidate:
    """The same candidate, run with `threads` intra-op threads (restored after each call)."""
    def run(*inputs):
        with course.threads(threads):
            return candidate.fn(*inputs)
    return timing.Candidate(run, candidate.inputs, candidate.setup_s, candidate.watch, f"{threads} thread(s)")


def minilm_batch1(model, tokenizer, folder: Path, quick: bool, skipped: dict) -> dict[str, timing.Candidate]:
    inputs = timing.sentence_inputs(tokenizer, timing.SENTENCES[:1])
    bf16 = timing.eager(model, torch.bfloat16)
    onnx_path, export_s = timing.onnx_file(model, inputs, course.workdir("bench"))
    cands = {
        "eager fp32": timing.eager(model),
        "jit.trace": timing.traced(model, inputs),
        "jit.trace+freeze": timing.traced(model, inputs, freeze=True),
        "optimize_for_inference": timing.traced(model, inputs, optimize=True),
        "onnxruntime fp32": timing.onnxruntime(onnx_path, setup_s=export_s),
        "int8 dynamic": timing.int8_dynamic(model),
        "eager autocast bf16": timing.eager(model, autocast=True),
        "eager bf16": bf16,
        "bf16 jit.trace+freeze": timing.traced(bf16.fn, inputs, freeze=True),
    }
    optional("openvino fp32", lambda: timing.openvino(model, inputs, bf16=False), cands, skipped)
    optional("openvino bf16", lambda: timing.openvino(model, inputs, bf16=True), cands, skipped)
    cands["compile fp32"] = timing.compiled(model, inputs)
    cands["compile bf16"] = timing.compiled(bf16.fn, inputs, max_autotune=not quick, cpp_wrapper=not quick)
    spec = {"model": "minilm", "batch": 1, "seq": 128, "dtype": "bfloat16"}
    cands["aoti bf16"] = aoti({**spec, "autotune": False}, folder)
    cands["aoti bf16 eager-attention"] = aoti({**spec, "autotune": False, "attention": "eager"}, folder)
    if not quick:
        cands["aoti bf16 max-autotune"] = aoti({**spec, "autotune": True}, folder)
    return cands


def minilm_batch8(model, tokenizer, folder: Path, quick: bool, skipped: dict) -> dict[str, timing.Candidate]:
    one = timing.sentence_inputs(tokenizer, timing.SENTENCES[:1])
    eight = timing.sentence_inputs(tokenizer, timing.SENTENCES[:8])
    bf16 = timing.eager(model, torch.bfloat16).fn
    cands = {"eager fp32 b1": timing.Candidate(model, one), "eager fp32 b8": timing.Candidate(model, eight)}
    frozen = timing.traced(bf16, eight, freeze=True)
    cands["bf16 jit.trace+freeze b8"] = timing.Candidate(frozen.fn, eight, frozen.setup_s)
    optional("openvino bf16 b8", lambda: timing.openvino(model, eight, bf16=True), cands, skipped)
    if "openvino bf16 b8" in cands:
        cands["openvino bf16 b8"].inputs = eight
    aot = aoti({"model": "minilm", "dtype": "bfloat16", "batch": 8, "seq": 128, "autotune": False}, folder)
    cands["aoti bf16 b8"] = timing.Candidate(aot.fn, eight, aot.setup_s, note=aot.note)
    return cands


def sweep_lengths(model, tokenizer, lengths, repeat: int) -> dict[str, list[dict]]:
    """Eager fp32 vs bf16 trace+freeze and ONNX Runtime at several sequence lengths (batch 1)."""
    out = {}
    bf16 = timing.eager(model, torch.bfloat16).fn
    inputs = timing.sentence_inputs(tokenizer, timing.SENTENCES[:1], lengths[0])
    onnx_path, _ = timing.onnx_file(model, inputs, course.workdir("bench"))  # dynamic axes: any length
    session = timing.onnxruntime(onnx_path)
    for seq in lengths:
        inputs = timing.sentence_inputs(tokenizer, timing.SENTENCES[:1], seq)
        cands = {"eager fp32": timing.eager(model),
                 "bf16 jit.trace+freeze": timing.traced(bf16, inputs, freeze=True),
                 "onnxruntime fp32": session}
        out[str(seq)] = timing.compare(cands, inputs, repeat=repeat, progress=False, pause=PAUSE).records()
    return out


def thread_scaling(model, tokenizer, repeat: int) -> list[dict]:
    """1 vs 2 threads, interleaved, for eager fp32 and bf16 trace+freeze (AOTInductor bakes its thread
    count in at compile time, so it is left out here)."""
    inputs = timing.sentence_inputs(tokenizer, timing.SENTENCES[:1])
    frozen = timing.traced(timing.eager(model, torch.bfloat16).fn, inputs, freeze=True)
    cands = {f"{name} {n}t": with_threads(c, n) for name, c in (("eager fp32", timing.eager(model)),
             ("bf16 jit.trace+freeze", frozen)) for n in (1, 2)}
    return timing.compare(cands, inputs, repeat=repeat, progress=False, pause=PAUSE).records()


def bert_base(folder: Path, quick: bool, repeat: int, skipped: dict) -> timing.Comparison:
    model, tokenizer = load("bert-base")
    inputs = timing.sentence_inputs(tokenizer, timing.SENTENCES[:1])
    bf16 = timing.eager(model, torch.bfloat16)
    onnx_path, export_s = timing.onnx_file(model, inputs, course.workdir("bench"))
    cands = {"eager fp32": timing.eager(model), "jit.trace+freeze": timing.traced(model, inputs, freeze=True),
             "onnxruntime fp32": timing.onnxruntime(onnx_path, setup_s=export_s), "eager bf16": bf16,
             "bf16 jit.trace+freeze": timing.traced(bf16.fn, inputs, freeze=True)}
    optional("openvino bf16", lambda: timing.openvino(model, inputs, bf16=True), cands, skipped)
    cands["aoti bf16"] = aoti({"model": "bert-base", "dtype": "bfloat16", "batch": 1, "seq": 128,
                               "autotune": False}, folder)  # max-autotune on bert-base would double the run
    accuracy = timing.sentence_inputs(tokenizer, timing.SENTENCES)
    return timing.compare(cands, inputs, accuracy_inputs=accuracy, repeat=repeat, pause=PAUSE)


def achieved(records: list[dict], config, seq: int = 128) -> dict[str, float]:
    """GFLOP/s each path reached: encoder FLOPs per call / median seconds per call."""
    return {r["name"]: timing.encoder_flops(config, r["samples"], seq) / (r["median_ms"] / 1e3) / 1e9
            for r in records}


def headline(batch1: timing.Comparison, batch8: timing.Comparison) -> dict:
    """The targets, computed: fastest path the course teaches (OpenVINO is the peer it is measured against,
    not one of them) with cosine >= 0.999, at batch 1 and per sample at batch 8."""
    best1, best8 = batch1.best(0.999, skip=("openvino",)), batch8.best(0.999, skip=("openvino",))
    openvino = batch1.rows[[r.name for r in batch1.rows].index("openvino bf16")] if any(
        r.name == "openvino bf16" for r in batch1.rows) else None
    return {"best_batch1": best1.name, "best_batch1_speedup": best1.speedup, "best_batch1_cosine": best1.cosine,
            "best_batch8": best8.name, "best_batch8_speedup_per_sample": best8.speedup,
            "openvino_bf16_speedup": openvino.speedup if openvino else None,
            "best_beats_openvino_bf16": (best1.speedup > openvino.speedup) if openvino else None}


def plot(result: dict, path: Path) -> None:
    """Three panels: batch-1 speedups, batch-8 per-sample speedups, achieved GFLOP/s vs measured peaks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(19, 6))
    mini = result["minilm"]
    timing.plot(timing.Comparison.from_records(mini["batch1"], "eager fp32"), axes[0], "MiniLM, batch 1 x 128")
    timing.plot(timing.Comparison.from_records(mini["batch8"], "eager fp32 b1"), axes[1], "MiniLM, per sample, batch 8")
    timing.roofline(mini["gflops"], result["peaks_gflops"], axes[2], "MiniLM batch 1: achieved vs matmul peak")
    fig.suptitle(f"{result['provenance']['machine']}, {result['provenance']['threads']} threads, "
                 f"{result['provenance']['date']}: {result['provenance']['command']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def update_readme(result: dict) -> None:
    """Rewrite the README's benchmark line (between its markers) from these results."""
    readme, start, end = ROOT / "README.md", "<!-- bench-backends:start -->", "<!-- bench-backends:end -->"
    text = readme.read_text() if readme.exists() else ""
    if start not in text or end not in text:
        return
    head, prov = result["minilm"]["headline"], result["provenance"]
    openvino = f"; OpenVINO bf16 {head['openvino_bf16_speedup']:.2f}x" if head["openvino_bf16_speedup"] else ""
    line = (f"Notebook 05's benchmark: fastest path with cosine >= 0.999 on MiniLM, batch 1 x 128: "
            f"**{head['best_batch1']}, {head['best_batch1_speedup']:.2f}x** eager fp32; per sample at batch 8: "
            f"{head['best_batch8']}, {head['best_batch8_speedup_per_sample']:.2f}x{openvino} "
            f"({prov['machine']}, {prov['threads']} thread{'s' if prov['threads'] != 1 else ''}, "
            f"load average {prov['load_average_before'][0]:.1f}, "
            f"{prov['date']}, `{prov['command']}`).")
    before, rest = text.split(start, 1)
    readme.write_text(f"{before}{start}\n{line}\n{end}{rest.split(end, 1)[1]}")


def run(quick: bool) -> dict:
    repeat = 8 if quick else 30
    skipped: dict[str, str] = {}
    folder = course.workdir("bench")
    threads = torch.get_num_threads()
    flags = (" --quick" if quick else "") + (f" --threads {threads}" if threads != os.cpu_count() else "")
    result = {"provenance": {**timing.provenance(COMMAND.format(flags)),
                             "load_average_before": os.getloadavg()},
              "cpu": timing.cpu_features(), "bf16": timing.bf16_support()[1]}
    busy = os.getloadavg()[0]
    if busy > 0.5:
        print(f"warning: load average {busy:.1f} before starting: other work shares these cores, so timings "
              "(PyTorch's OpenMP threads above all) will be noisy. Re-run on a quiet machine for final numbers.")
    result["peaks_gflops"] = {"fp32": timing.matmul_peak(torch.float32, 1024),
                              "bf16": timing.matmul_peak(torch.bfloat16, 1024)}
    model, tokenizer = load("minilm")
    accuracy = timing.sentence_inputs(tokenizer, timing.SENTENCES)
    print("MiniLM, batch 1 x 128: building every path (AOTInductor in subprocesses) ...")
    cands1 = minilm_batch1(model, tokenizer, folder, quick, skipped)
    inputs = timing.sentence_inputs(tokenizer, timing.SENTENCES[:1])
    batch1 = timing.compare(cands1, inputs, accuracy_inputs=accuracy, repeat=repeat, pause=PAUSE)
    print(batch1)
    print("MiniLM, batch 8 ...")
    cands8 = minilm_batch8(model, tokenizer, folder, quick, skipped)
    batch8 = timing.compare(cands8, accuracy_inputs=accuracy, repeat=repeat, pause=PAUSE)
    print(batch8)
    mini = {"batch1": batch1.records(), "batch8": batch8.records(),
            "lengths": sweep_lengths(model, tokenizer, [32, 64, 128, 256], max(5, repeat // 2)),
            "threads": thread_scaling(model, tokenizer, max(5, repeat // 2)),
            "gflops": achieved(batch1.records(), model.config)}
    result["minilm"] = {**mini, "headline": headline(batch1, batch8)}
    print("BERT-base (config-built), batch 1 x 128 ...")
    result["bert-base"] = {"batch1": bert_base(folder, quick, max(5, repeat // 2), skipped).records()}
    result["skipped"] = skipped
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):  # again at the end: keep the best
        result["peaks_gflops"][name] = max(result["peaks_gflops"][name], timing.matmul_peak(dtype, 1024))
    result["provenance"]["load_average_after"] = os.getloadavg()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no max-autotune: a smoke test")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="intra-op threads (default: all cores); 1 is steadier on a machine shared with other work")
    parser.add_argument("--build-aoti", help=argparse.SUPPRESS)  # internal: one AOTInductor build per subprocess
    args = parser.parse_args()
    if args.build_aoti:
        return build_aoti_child(json.loads(args.build_aoti))
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    result = run(args.quick)
    result["provenance"]["seconds"] = time.perf_counter() - start
    name = "backends-quick" if args.quick else "backends"
    path = timing.results.write(name, result)
    plot(result, path.with_suffix(".png"))
    if not args.quick:
        update_readme(result)
    print(json.dumps(result["minilm"]["headline"], indent=1))
    print(f"wrote {path} and {name}.png in {result['provenance']['seconds']:.0f} s")


if __name__ == "__main__":
    main()
