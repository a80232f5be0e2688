"""The fastest accurate way to run a model on THIS CPU, picked by measurement: `fastest(...)` returns a `Choice`.

Introduced at the end of notebook 05; `benchmarks/backends.py` applies the same choice to its larger set of paths.
Three steps, each testable alone:
1. `plan(cpu, peaks, budget_s)` (pure): which recipes apply to this CPU class and fit the build budget. bf16 is
   built only where the measured GEMM probe says it pays (or on AMX): flags alone mislead (an Intel Xeon with
   AVX512_BF16 ran bf16 GEMMs at half fp32's speed). oneDNN Graph fusion for TorchScript is x86 only.
2. `timing.compare` builds nothing: it times the built candidates interleaved (its clock is injectable) and puts
   each one's cosine to fp32 eager beside its speed.
3. `choose(comparison, recipes, min_cosine, tie)` (pure): the fastest accurate row; rows within `tie` of it are
   noise on a shared machine, and among them a path that saves to a file, then the cheaper build, wins.
The winner saves as a checked `.pt` (`files.save`) or `.pt2` (`export.package`). A `.pt` timed with oneDNN
fusion says so in its manifest ("runtime"); `load` switches fusion on for it and says so (`files.load` warns).
torch.compile is not a candidate: it leaves no file to serve (its ahead-of-time twin, AOTInductor, is one).
Neither is int8: on MiniLM no int8 scheme reaches cosine 0.999 (`timing.int8` measures why); time it with
`timing.compare` where a model tolerates it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from helpers import accuracy, course, files
from helpers.timing import hardware, paths
from helpers.timing.clock import Clock
from helpers.timing.comparison import Candidate, Comparison, compare


@dataclass(frozen=True)
class Recipe:
    """One candidate: how it is built and its typical build seconds (MiniLM, 2 cores; bigger models take longer)."""

    name: str
    kind: str  # "eager" | "jit" | "jit-onednn" | "aoti"
    dtype: torch.dtype
    build_s: float

    @property
    def saves_as(self) -> str:
        return {"eager": "", "aoti": ".pt2"}.get(self.kind, ".pt")


RECIPES = (
    Recipe("eager fp32", "eager", torch.float32, 0.0),
    Recipe("jit.trace+freeze fp32", "jit", torch.float32, 0.5),
    Recipe("jit.trace+freeze bf16", "jit", torch.bfloat16, 0.8),
    Recipe("jit+oneDNN fusion fp32", "jit-onednn", torch.float32, 2.0),
    Recipe("jit+oneDNN fusion bf16", "jit-onednn", torch.bfloat16, 2.0),
    Recipe("aoti fp32", "aoti", torch.float32, 30.0),
    Recipe("aoti bf16", "aoti", torch.bfloat16, 25.0),
)
"""Build seconds measured on a 2-core AMD EPYC (torch 2.13, MiniLM): trace+freeze 0.4-1.8 s, with oneDNN fusion
(three warm-up calls included) 0.4-2 s, AOTInductor packages 18-45 s."""

X86 = ("amx", "avx512-bf16", "avx512", "avx2")


def plan(cpu: str, peaks: dict[str, float] | None, budget_s: float,
         recipes: Sequence[Recipe] = RECIPES) -> tuple[list[Recipe], dict[str, str]]:
    """(recipes to build, {left-out recipe: why}) for a CPU of class `cpu` (`hardware.cpu_class()`) whose GEMM
    probe gave `peaks` (`hardware.gemm_peaks()`; None: not measured). Cheapest first, while the typical build
    seconds fit in `budget_s`; eager fp32, the baseline, always. Pure: tests pass made-up classes and peaks."""
    ratio = hardware.bf16_speedup(peaks) if peaks else None
    chosen, left_out, spent = [], {}, 0.0
    for recipe in sorted(recipes, key=lambda r: r.build_s):
        if recipe.kind == "jit-onednn" and cpu not in X86:
            left_out[recipe.name] = f"oneDNN Graph fusion for TorchScript runs on x86 only (this CPU: {cpu})"
        elif recipe.dtype == torch.bfloat16 and cpu != "amx" and (ratio or 0) < hardware.BF16_PAYS:
            left_out[recipe.name] = (f"bf16 GEMMs run at {ratio:.2f}x fp32 here (below {hardware.BF16_PAYS}x)"
                                     if ratio else f"bf16 not measured fast on this CPU ({cpu})")
        elif recipe.kind != "eager" and spent + recipe.build_s > budget_s:
            left_out[recipe.name] = f"estimated ~{recipe.build_s:.0f} s to build: over the {budget_s:.0f} s build budget"
        else:
            chosen.append(recipe)
            spent += recipe.build_s
    return chosen, left_out


def choose(comparison: Comparison, recipes: Sequence[Recipe], min_cosine: float = accuracy.MIN_COSINE,
           tie: float = 0.03) -> tuple[str, dict[str, str]]:
    """(the chosen row's name, {row: verdict}). Fastest per sample among rows that passed the guard and kept
    cosine >= `min_cosine`; rows within `tie` (a fraction) of it are a tie, won by a path that saves to a file,
    then the cheaper build, then the higher cosine. Pure: it reads only the comparison's numbers."""
    by_name = {r.name: r for r in recipes}
    verdicts = {r.name: (r.status if r.status != "ok" else f"cosine {r.cosine:.4f} < {min_cosine}")
                for r in comparison.rows}
    accurate = [r for r in comparison.rows if r.status == "ok" and r.cosine is not None and r.cosine >= min_cosine]
    if not accurate:
        raise ValueError(f"no candidate kept cosine >= {min_cosine}: lower min_cosine or check the model")
    best = min(r.per_sample_ms for r in accurate)
    tied = [r for r in accurate if r.per_sample_ms <= best * (1 + tie)]
    pick = min(tied, key=lambda r: (not by_name[r.name].saves_as, by_name[r.name].build_s, -r.cosine))
    for row in accurate:
        verdicts[row.name] = ("CHOSEN" if row is pick else f"tie within {tie:.0%}" if row in tied
                              else f"{row.per_sample_ms / best:.2f}x slower")
    return pick.name, verdicts


@dataclass
class Choice:
    """What `fastest` returns: the winner, ready to call (`choice(*inputs)`), its table and `save(path)`."""

    name: str
    fn: Callable[..., Any]
    comparison: Comparison
    verdicts: dict[str, str]
    left_out: dict[str, str]
    cpu: str
    peaks: dict[str, float] | None
    load_average: float
    _save: Callable[[Path, bool], dict[str, Any]] = field(repr=False)

    def __call__(self, *inputs: torch.Tensor) -> Any:
        return self.fn(*inputs)

    @property
    def speedup(self) -> float:
        """Per sample, vs eager fp32, in the same interleaved run."""
        return self.comparison[self.name].speedup

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> dict[str, Any]:
        """Write the winner as a checked `.pt` or `.pt2` file (the suffix must match) plus its manifest; return it."""
        return self._save(Path(path), overwrite)

    def verdict(self) -> str:
        """'on this machine, serve X': one sentence."""
        return (f"on this machine ({self.cpu}), serve {self.name}: {self.speedup:.2f}x eager fp32 per sample, "
                f"cosine {self.comparison[self.name].cosine:.4f}")

    def table(self) -> str:
        """Every candidate's timing, accuracy and verdict, then each recipe left out and why."""
        busy = f"; busy (load average {self.load_average:.1f}): timings are noisy" if self.load_average >= 1 else ""
        header, *rows = self.comparison.table().splitlines()
        lines = [self.verdict() + busy, header + "  verdict"]
        lines += [f"{line}  {self.verdicts[row.name]}" for line, row in zip(rows, self.comparison.rows)]
        lines += [f"{name:<28} not built: {why}" for name, why in self.left_out.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _jit_save(module: torch.jit.ScriptModule, example: tuple, onednn: bool) -> Callable[[Path, bool], dict]:
    runtime = {"onednn_fusion": True} if onednn else None
    return lambda path, overwrite: files.save(module, path, example, runtime=runtime, overwrite=overwrite)


def _copy_package(built: Path) -> Callable[[Path, bool], dict]:
    """save(path) for a `.pt2` built in a scratch folder: checked, then copied with its manifest (renamed)."""
    from helpers import export

    def save(path: Path, overwrite: bool) -> dict[str, Any]:
        if path.suffix != ".pt2":
            raise ValueError(f"{path.name}: the chosen path is an AOTInductor package, so save it as a .pt2")
        manifest = export.check_package(built)
        files.refuse_overwrite(path, files.manifest_path(path), overwrite=overwrite)
        shutil.copyfile(built, path)
        files.manifest_path(path).write_text(json.dumps({**manifest, "file": path.name}, indent=2) + "\n")
        return export.check_package(path)
    return save


def _no_file(path: Path, overwrite: bool) -> dict[str, Any]:
    raise ValueError("eager fp32 won: the Python model itself is the fastest here, so there is no compiled file "
                     "to save (save the model with save_pretrained)")


def saver(recipe: Recipe, candidate: Candidate, example: tuple) -> Callable[[Path, bool], dict]:
    """save(path, overwrite) for a TorchScript or eager recipe's candidate (a `.pt`, with its runtime settings)."""
    if recipe.kind == "eager":
        return _no_file
    if recipe.kind not in ("jit", "jit-onednn"):
        raise ValueError(f"{recipe.name}: only TorchScript candidates can be passed in built; let fastest build it")
    return _jit_save(candidate.fn, example, recipe.kind == "jit-onednn")


def build(recipe: Recipe, model: torch.nn.Module, example: tuple) -> tuple[Candidate, Callable[[Path, bool], dict]]:
    """(the candidate, its save(path, overwrite)) for one recipe."""
    if recipe.kind == "eager":
        return paths.eager(model), _no_file
    source = model if recipe.dtype == torch.float32 else paths.eager(model, recipe.dtype).fn
    if recipe.kind == "aoti":
        built = course.workdir("fastest") / f"{recipe.name.replace(' ', '-')}.pt2"
        dtype = None if recipe.dtype == torch.float32 else recipe.dtype
        return paths.aoti(model, example, built, dtype=dtype), _copy_package(built)
    candidate = paths.traced(source, example, freeze=True, onednn=recipe.kind == "jit-onednn")
    return candidate, saver(recipe, candidate, example)


def fastest(model: torch.nn.Module, example_inputs: tuple, accuracy_inputs: tuple,
            min_cosine: float = accuracy.MIN_COSINE, *, budget_s: float = 10.0, repeat: int = 10,
            cpu: str | None = None, peaks: dict[str, float] | None = None, built: dict[str, Candidate] | None = None,
            recipes: Sequence[Recipe] = RECIPES, builder: Callable = build, pause: float = 0.02,
            clock: Clock = time.perf_counter) -> Choice:
    """Build the recipes that apply to this CPU within `budget_s` typical build seconds, time them interleaved on
    `example_inputs` (B x T), score each by its lowest sentence-embedding cosine to fp32 eager on `accuracy_inputs`
    (N x T, run in chunks of B), and return the fastest with cosine >= `min_cosine` as a `Choice`.

    `budget_s=10` keeps to the TorchScript recipes (seconds to build); 70 adds the AOTInductor packages
    (minutes on 2 cores). `built` reuses TorchScript candidates you already made for `example_inputs`, by recipe
    name (e.g. {"jit.trace+freeze fp32": timing.Candidate(frozen)}). `cpu`, `peaks` (default:
    `hardware.cpu_class()`, `hardware.gemm_peaks(512)`), `builder` and `clock` are for tests."""
    cpu = cpu or hardware.cpu_class()
    peaks = peaks if peaks is not None else hardware.gemm_peaks(512, repeat=5)
    chosen, left_out = plan(cpu, peaks, budget_s, recipes)
    example, reuse = tuple(example_inputs), built or {}
    made = {r.name: (reuse[r.name], saver(r, reuse[r.name], example)) if r.name in reuse else builder(r, model, example)
            for r in chosen}
    comparison = compare({name: candidate for name, (candidate, _) in made.items()}, example,
                         accuracy_inputs=accuracy_inputs, repeat=repeat, pause=pause, progress=False, clock=clock)
    name, verdicts = choose(comparison, chosen, min_cosine)
    return Choice(name, made[name][0].fn, comparison, verdicts, left_out, cpu, peaks, os.getloadavg()[0], made[name][1])


def load(path: str | os.PathLike) -> Any:
    """Load a file `Choice.save` wrote, checked against its manifest: a `.pt2` package or a `.pt` TracedModel.
    If the manifest says the path was timed with oneDNN Graph fusion, switch fusion on for this process (a global
    TorchScript setting) and say so: without it the module runs correctly but unfused, slower."""
    from helpers import export

    if Path(path).suffix == ".pt2":
        return export.load_package(path)
    manifest = files.check_file(path, files.TORCHSCRIPT)
    if manifest.get("runtime", {}).get("onednn_fusion") and not torch.jit.onednn_fusion_enabled():
        torch.jit.enable_onednn_fusion(True)
        print(f"{Path(path).name} was timed with oneDNN Graph fusion: called torch.jit.enable_onednn_fusion(True) "
              "for this process (the first calls at each shape fuse)")
    return files.load(path)
