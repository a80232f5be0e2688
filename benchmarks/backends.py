"""Every CPU path the course teaches for MiniLM, against OpenVINO and ONNX Runtime at their best, per machine.

Run: `make bench` (all benchmarks) or `.venv/bin/python benchmarks/backends.py [--quick] [--threads N]`;
`--readme` only rewrites the README's per-machine lines from the committed results.
Writes benchmarks/results/<this machine>/backends.json and backends.png (notebook 05 shows every machine's), keeps
this machine's previous results beside them, and rewrites the README's per-machine headline lines.
Model: the shipped all-MiniLM-L6-v2. Inputs: real sentences padded to 128 tokens, batch 1 and batch 8.
Accuracy: lowest cosine of 16 mean-pooled sentence embeddings vs fp32 eager; 0.999 is the bar.

Processes, so that no engine disturbs another (oneDNN-fused TorchScript and OpenVINO segfault in one process):
- one subprocess per AOTInductor package (its cold compile time is measured there);
- the course child: every course path at 1 x 128 and 8 x 128 (TorchScript with and without oneDNN Graph fusion,
  bf16, int8, torch.compile and AOTInductor in fp32 and bf16), the int8 analysis, lengths and threads;
- the peers child: OpenVINO f32 and bf16 (LATENCY with static and dynamic shapes, THROUGHPUT) and ONNX Runtime
  (generic graph optimisations, and its transformer optimizer).
Both children time eager fp32 at batch 1 interleaved with their rows: every speedup is relative to it, which
links the two (`helpers.timing.verdict`). A run that starts on a busy machine (load average >= 1) is written
with its load, and the README says it gives no verdict.
OpenVINO is driven through its own API (`ov.convert_model`, static shapes, a reused request): optimum-intel is
how Transformers users reach it, but from PyPI it pulls a CUDA torchvision that breaks this CPU stack's imports,
and its Python wrapper adds about 1 ms per call. ONNX Runtime runs fp32 only: its CPU fp16 kernels are ARM's.
Time: about 6 minutes on 2 quiet cores (half of it the six AOTInductor builds); `--quick` skips max-autotune.
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

from helpers import course, export, models, timing  # noqa: E402
from helpers.timing import choice, int8, paths, verdict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAUSE = 0.02  # seconds between timed calls, so one runtime's idle threads stop spinning before the next runs
COMMAND = "make bench  (.venv/bin/python benchmarks/backends.py{})"
SEQ = 128
README_MARKERS = ("<!-- bench-machines:start -->", "<!-- bench-machines:end -->")


def minilm():
    """(model, tokenizer, inputs at batch 1, at batch 8, the 16 check sentences), all padded to 128 tokens."""
    model, tokenizer = models.load_model(models.SHIPPED_NAME)
    one, eight, checks = (timing.sentence_inputs(tokenizer, timing.SENTENCES[:n], SEQ) for n in (1, 8, 16))
    return model, tokenizer, one, eight, checks


# ------------------------------------------------------------------ AOTInductor packages, one process each
def package_specs(quick: bool) -> dict[str, dict]:
    """The packages to build: fp32 and bf16 at batch 1 and 8; max-autotune at batch 1 too (not with --quick)."""
    specs = {f"aoti {d}{' b8' if b == 8 else ''}": {"dtype": d, "batch": b, "autotune": False}
             for b in (1, 8) for d in ("fp32", "bf16")}
    if not quick:
        specs |= {f"aoti {d} max-autotune": {"dtype": d, "batch": 1, "autotune": True} for d in ("fp32", "bf16")}
    return specs


def build_package(spec: dict) -> None:
    """Subprocess entry: export + AOT-compile one package (the model cast to its dtype first)."""
    model, _, one, eight, _ = minilm()
    dtype = torch.bfloat16 if spec["dtype"] == "bf16" else torch.float32
    program = export.export_program(model.to(dtype), one if spec["batch"] == 1 else eight, dynamic=False)
    export.package(program, spec["path"], dtype=dtype, max_autotune=spec["autotune"])


def build_packages(specs: dict[str, dict], folder: Path) -> dict[str, str]:
    """Build every package in its own subprocess; return {row name: path}."""
    built = {}
    for name, spec in specs.items():
        path = folder / f"{name.replace(' ', '-')}.pt2"
        print(f"building {name} ...", flush=True)
        child([sys.executable, __file__, "--build-aoti", json.dumps({**spec, "path": str(path)})])
        built[name] = str(path)
    return built


def package(path: str, inputs: tuple) -> timing.Candidate:
    """A package built above, loaded with its manifest checked; its set-up time is its compile time."""
    loaded = export.load_package(path)
    return timing.Candidate(loaded, inputs, setup_s=loaded.manifest["compile_seconds"],
                            note="max_autotune" if loaded.manifest["settings"]["max_autotune"] else "")


# ------------------------------------------------------------------ the course child
def int8_analysis(model, checks, quick: bool) -> dict:
    """Why dynamic int8 misses the bar: error sources, per layer (families with --quick), outliers, and how many
    Linear layers must stay fp32 for quantize_dynamic to reach 0.999."""
    reference = int8.embeddings(model, checks)
    names = [n for n in int8.linear_names(model) if not n.startswith("pooler")]  # the pooler is not in the embedding
    groups = int8.families(names) if quick else {n: [n] for n in names}
    alone = int8.alone(model, checks, reference, groups)
    found = {"sources": int8.error_sources(model, checks, reference), "alone": alone,
             "outliers": int8.input_outliers(model, checks),
             "whole": {"per-tensor": int8.lowest_cosine(int8.quantized(model), checks, reference),
                       "per-channel": int8.lowest_cosine(int8.quantized(model, per_channel=True), checks, reference)}}
    if not quick:
        ranked = sorted(names, key=alone.get)
        kept, cosine = int8.fp32_needed(model, checks, reference, ranked)
        found["fp32_needed"] = {"kept": ranked[:kept], "of": len(names), "cosine": cosine}
    return found


def batch1_candidates(model, one, packages: dict[str, str], keep: list[str]) -> dict[str, timing.Candidate]:
    """Every course path at 1 x 128: TorchScript, bf16, int8, torch.compile and the AOTInductor packages."""
    bf16 = paths.eager(model, torch.bfloat16)
    cands = {"eager fp32": paths.eager(model), "jit.trace fp32": paths.traced(model, one),
             "jit.trace+freeze fp32": paths.traced(model, one, freeze=True),
             "optimize_for_inference fp32": paths.traced(model, one, optimize=True),
             "jit+oneDNN fusion fp32": paths.traced(model, one, onednn=True), "eager bf16": bf16,
             "eager autocast bf16": paths.eager(model, autocast=True),
             "jit.trace+freeze bf16": paths.traced(bf16.fn, one, freeze=True),
             "jit+oneDNN fusion bf16": paths.traced(bf16.fn, one, onednn=True),
             "int8 dynamic": paths.int8_dynamic(model),
             "int8 dynamic per-channel": paths.int8_dynamic(model, per_channel=True)}
    if keep:
        cands[f"int8 dynamic, {len(keep)} Linear kept fp32"] = paths.int8_dynamic(model, keep=keep)
    cands["compile fp32"] = paths.compiled(model, one)
    cands["compile bf16"] = paths.compiled(bf16.fn, one)
    cands |= {name: package(path, one) for name, path in packages.items() if "b8" not in name}
    return cands


def batch8_candidates(model, one, eight, packages: dict[str, str]) -> dict[str, timing.Candidate]:
    """The fp32 and bf16 paths at 8 x 128, and eager fp32 at batch 1 (the reference)."""
    bf16 = paths.eager(model, torch.bfloat16).fn
    cands = {"eager fp32 b1": timing.Candidate(model, one), "eager fp32 b8": timing.Candidate(model, eight)}
    for dtype, source in (("fp32", model), ("bf16", bf16)):
        cands[f"jit.trace+freeze {dtype} b8"] = paths.traced(source, eight, freeze=True)
        cands[f"jit+oneDNN fusion {dtype} b8"] = paths.traced(source, eight, onednn=True)
        cands[f"compile {dtype} b8"] = paths.compiled(source, eight)
    cands |= {name: package(path, eight) for name, path in packages.items() if "b8" in name}
    for cand in cands.values():
        cand.inputs = cand.inputs if cand.inputs is not None else eight
    return cands


def sweep_lengths(model, tokenizer, lengths, repeat: int) -> dict[str, list[dict]]:
    """Eager fp32 vs bf16 trace+freeze (traced once, at the first length) at several lengths, batch 1."""
    bf16 = paths.eager(model, torch.bfloat16).fn
    frozen = paths.traced(bf16, timing.sentence_inputs(tokenizer, timing.SENTENCES[:1], lengths[0]), freeze=True)
    out = {}
    for seq in lengths:
        inputs = timing.sentence_inputs(tokenizer, timing.SENTENCES[:1], seq)
        cands = {"eager fp32": paths.eager(model), "jit.trace+freeze bf16": frozen}
        out[str(seq)] = timing.compare(cands, inputs, repeat=repeat, progress=False, pause=PAUSE).records()
    return out


def on_threads(candidate: timing.Candidate, threads: int) -> timing.Candidate:
    """The same candidate, run with `threads` intra-op threads (restored after each call)."""
    def run(*inputs):
        with course.threads(threads):
            return candidate.fn(*inputs)
    return timing.Candidate(run, candidate.inputs, candidate.setup_s, candidate.watch, f"{threads} thread(s)")


def thread_scaling(model, one, fused: timing.Candidate, repeat: int) -> list[dict]:
    """1 thread vs all, interleaved, for eager fp32 and the oneDNN-fused bf16 module (AOTInductor bakes its
    thread count in at compile time, so it is left out)."""
    counts = sorted({1, torch.get_num_threads()})
    cands = {f"{name} {n}t": on_threads(c, n) for name, c in (("eager fp32", paths.eager(model)),
             ("jit+oneDNN fusion bf16", fused)) for n in counts}
    return timing.compare(cands, one, repeat=repeat, progress=False, pause=PAUSE).records()


def course_child(quick: bool, packages: dict[str, str]) -> dict:
    """Subprocess entry: every course path, timed interleaved, plus the int8 analysis, lengths and threads."""
    model, tokenizer, one, eight, checks = minilm()
    repeat = 6 if quick else 30
    print("int8: error sources, layers, outliers ...", flush=True)
    found = {"int8": int8_analysis(model, checks, quick)}
    print("batch 1 x 128: building every course path ...", flush=True)
    cands = batch1_candidates(model, one, packages, found["int8"].get("fp32_needed", {}).get("kept", []))
    batch1 = timing.compare(cands, one, accuracy_inputs=checks, repeat=repeat, pause=PAUSE, progress=False)
    print(batch1, flush=True)
    print("batch 8 x 128 ...", flush=True)
    batch8 = timing.compare(batch8_candidates(model, one, eight, packages), accuracy_inputs=checks,
                            repeat=repeat, pause=PAUSE, progress=False)
    print(batch8, flush=True)
    recipes = {r.name: r for r in choice.RECIPES}
    served = timing.Comparison([r for r in batch1.rows if r.name in recipes], "eager fp32")
    chosen, verdicts = choice.choose(served, list(recipes.values()))
    return {**found, "batch1": batch1.records(), "batch8": batch8.records(),
            "fastest": {"choice": chosen, "verdicts": verdicts},
            "lengths": sweep_lengths(model, tokenizer, [32, 128] if quick else [32, 64, 128, 256], max(4, repeat // 2)),
            "threads": thread_scaling(model, one, cands["jit+oneDNN fusion bf16"], max(4, repeat // 2)),
            "flops_per_sentence": timing.encoder_flops(model.config, 1, SEQ)}


# ------------------------------------------------------------------ the peers child
def peer_candidates(model, inputs: tuple, reference: tuple, onnx: dict, ir) -> dict[str, timing.Candidate]:
    """OpenVINO (when installed) and ONNX Runtime at `inputs`' shape, with eager fp32 at batch 1 first."""
    b8 = " b8" if inputs[0].shape[0] == 8 else ""
    cands = {f"eager fp32{' b1' if b8 else ''}": timing.Candidate(model, reference)}
    if ir is not None:
        for precision in ("f32", "bf16"):
            for hint, static, label in (("LATENCY", True, "latency static"), ("LATENCY", False, "latency"),
                                        ("THROUGHPUT", False, "throughput")):
                cands[f"openvino {precision} {label}{b8}"] = paths.openvino(
                    ir[0], inputs, bf16=precision == "bf16", hint=hint, static=static, setup_s=ir[1])
    cands[f"onnxruntime fp32{b8}"] = paths.onnxruntime(onnx["path"], setup_s=onnx["seconds"])
    cands[f"onnxruntime fp32 transformer-optimized{b8}"] = paths.onnxruntime(
        onnx["optimized"], setup_s=onnx["seconds"] + onnx["optimize_seconds"])
    for name, cand in cands.items():
        cand.inputs = cand.inputs if cand.inputs is not None else inputs
    return cands


def peers_child(quick: bool) -> dict:
    """Subprocess entry: the peer engines at their best, at 1 x 128 and 8 x 128, each run interleaved."""
    model, _, one, eight, checks = minilm()
    skipped = {}
    try:
        ir = paths.openvino_model(model, one)
    except ImportError as err:
        ir, skipped["openvino"] = None, str(err)
    path, seconds = paths.onnx_file(model, one, course.workdir("bench-onnx"))
    optimized, fused, optimize_seconds = paths.ort_optimized(path, model.config)
    onnx = {"path": path, "seconds": seconds, "optimized": optimized, "optimize_seconds": optimize_seconds}
    found = {"skipped": skipped, "ort_fused_operators": fused}
    for key, inputs in (("batch1", one), ("batch8", eight)):
        cands = peer_candidates(model, inputs, one, onnx, ir)
        compared = timing.compare(cands, accuracy_inputs=checks, repeat=6 if quick else 30, pause=PAUSE,
                                  progress=False)
        print(compared, flush=True)
        found[key] = compared.records()
    return found


# ------------------------------------------------------------------ the parent
def child(command: list[str]) -> None:
    """Run a child process with this process's thread count, its output shown as it comes; stop if it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    done = subprocess.run(command, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"the child process {' '.join(command[2:4])[:200]} failed (exit code {done.returncode}): "
                           "its error is printed above")


def run_child(role: str, quick: bool, packages: dict[str, str]) -> dict:
    """Run the course or peers child; return the JSON it wrote."""
    out = Path(tempfile.mkdtemp(prefix=f"bench-{role}-")) / "result.json"
    spec = json.dumps({"role": role, "quick": quick, "packages": packages, "out": str(out)})
    child([sys.executable, __file__, "--child", spec])
    return json.loads(out.read_text())


def headline(result: dict) -> dict:
    """The course's fastest accurate path against the best peer, at batch 1 and per sample at batch 8."""
    found = {}
    for batch in (1, 8):
        m = verdict.match(result, batch)
        if m is not None:
            found[f"batch{batch}"] = {"course": m.course.name, "course_speedup": 1 / m.course.ratio,
                                      "peer": m.peer.name if m.peer else None,
                                      "peer_speedup": 1 / m.peer.ratio if m.peer else None,
                                      "gap": m.gap, "noise": m.noise, "verdict": m.verdict()}
    return {**found, "quiet": verdict.quiet(result)}


def run(quick: bool, threads: int) -> dict:
    """Everything, in processes of their own; returns the JSON-ready result."""
    flags = (" --quick" if quick else "") + (f" --threads {threads}" if threads != os.cpu_count() else "")
    result = {"provenance": {**timing.provenance(COMMAND.format(flags)), "load_average_before": os.getloadavg()},
              "cpu": timing.cpu_features(), "cpu_class": timing.cpu_class()}
    if os.getloadavg()[0] >= verdict.QUIET_LOAD:
        print(f"warning: load average {os.getloadavg()[0]:.1f}: other work shares these cores, so this run's "
              "timings are noisy and the README will give no verdict for it. Re-run on a quiet machine.")
    peaks = timing.gemm_peaks(1024)
    packages = build_packages(package_specs(quick), course.workdir("bench-aoti"))
    course_part = run_child("course", quick, packages)
    peers_part = run_child("peers", quick, {})
    result["peaks_gflops"] = {k: max(v, timing.gemm_peaks(1024, passes=1).get(k, 0.0)) for k, v in peaks.items()}
    result["minilm"] = {**course_part, "peers": peers_part}
    result["headline"] = headline(result)
    result["provenance"]["load_average_after"] = os.getloadavg()
    return result


def plot(result: dict, path: Path) -> None:
    """Three panels: batch-1 speedups (course and peers), batch-8 per-sample speedups, GFLOP/s vs GEMM peaks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mini = result["minilm"]
    fig, axes = plt.subplots(1, 3, figsize=(20, 7))
    for ax, key, base in ((axes[0], "batch1", "eager fp32"), (axes[1], "batch8", "eager fp32 b1")):
        records = mini[key] + [r for r in mini["peers"][key] if r["name"] != base]
        title = f"MiniLM {key}, per sample vs {base} (peers: their own process's)"
        timing.plot(timing.Comparison.from_records(records, base), ax, title)
    flops = mini["flops_per_sentence"]
    achieved = {r["name"]: flops / (r["median_ms"] / 1e3) / 1e9 for r in mini["batch1"] + mini["peers"]["batch1"]
                if r["status"] == "ok"}
    timing.roofline(achieved, result["peaks_gflops"], axes[2], "MiniLM batch 1: achieved vs GEMM peaks")
    prov = result["provenance"]
    fig.suptitle(f"{prov['machine']}, {prov['threads']} threads, load {prov['load_average_before'][0]:.1f}, "
                 f"{prov['date']}: {prov['command']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def update_readme() -> None:
    """Rewrite the README's per-machine lines (between its markers) from every machine's committed results."""
    readme, (start, end) = ROOT / "README.md", README_MARKERS
    text = readme.read_text() if readme.exists() else ""
    if start not in text or end not in text:
        return
    lines = "\n".join(verdict.line(folder, found) for folder, found in timing.read_all("backends").items())
    before, rest = text.split(start, 1)
    readme.write_text(f"{before}{start}\n{lines}\n{end}{rest.split(end, 1)[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and packages: a smoke test, not saved")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="intra-op threads (default: all cores); 1 is steadier on a machine shared with other work")
    parser.add_argument("--readme", action="store_true", help="only rewrite the README's lines from the results")
    parser.add_argument("--build-aoti", help=argparse.SUPPRESS)  # internal: one AOTInductor build per subprocess
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: the course or the peers process
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.build_aoti:
        return build_package(json.loads(args.build_aoti))
    if args.child:
        spec = json.loads(args.child)
        quick = spec["quick"]
        found = course_child(quick, spec["packages"]) if spec["role"] == "course" else peers_child(quick)
        return Path(spec["out"]).write_text(json.dumps(found))
    if args.readme:
        return update_readme()
    start = time.perf_counter()
    result = run(args.quick, args.threads)
    result["provenance"]["seconds"] = round(time.perf_counter() - start, 1)
    folder = Path(tempfile.mkdtemp(prefix="bench-quick-")) if args.quick else None
    path = timing.results.write("backends", result, folder)
    plot(result, path.with_suffix(".png"))
    if not args.quick:
        update_readme()
    print(json.dumps(result["headline"], indent=1))
    print(f"wrote {path} and backends.png in {result['provenance']['seconds']:.0f} s")


if __name__ == "__main__":
    main()
