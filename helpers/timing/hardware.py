"""What this CPU offers for fast fp32, bf16 and int8 maths, its measured matmul peaks, and a BERT's FLOP count.

Introduced in notebook 05. The CPU classes the course tells apart:
- "amx": Intel's AMX tiles (Sapphire Rapids and later) multiply bf16 and int8 matrices in hardware;
- "avx512-bf16": AVX-512 with bf16 dot products (vdpbf16ps), no AMX: bf16 can beat fp32, or not (measure it);
- "avx512": AVX-512 without bf16 instructions: bf16 is converted in software, slower than fp32;
- "avx2": AVX2 only (older or smaller x86 CPUs): fp32, and int8 through AVX2 or AVX-VNNI;
- "arm": ARM (Graviton, Apple silicon): NEON/SVE; bf16 where the CPU has BF16 instructions.
"""

from __future__ import annotations

import platform

import torch

from helpers.timing.clock import measure

CPU_CLASSES = ("amx", "avx512-bf16", "avx512", "avx2", "arm", "other")


def cpu_features() -> dict[str, bool]:
    """What this CPU offers PyTorch for fast fp32/bf16/int8 maths, as PyTorch itself detects it."""
    cpu = torch.cpu
    return {
        "avx2": cpu._is_avx2_supported(), "avx512": cpu._is_avx512_supported(),
        "avx512_bf16": cpu._is_avx512_bf16_supported(), "amx": cpu._is_amx_tile_supported(),
        "vnni (int8)": cpu._is_vnni_supported(),
    }


def cpu_class(features: dict[str, bool] | None = None) -> str:
    """Which of `CPU_CLASSES` this CPU (or these `cpu_features()`) belongs to."""
    if platform.machine().lower() in {"arm64", "aarch64"}:
        return "arm"
    feats = features or cpu_features()
    for name, flag in (("amx", "amx"), ("avx512-bf16", "avx512_bf16"), ("avx512", "avx512"), ("avx2", "avx2")):
        if feats.get(flag):
            return name
    return "other"


def bf16_support() -> tuple[bool, str]:
    """(bf16 instructions present, why): AMX tiles or AVX-512 BF16 dot products; otherwise bf16 is emulated.

    Instructions are not speed: `matmul_peak` measures whether bf16 actually beats fp32 here.
    """
    feats = cpu_features()
    if feats["amx"]:
        return True, "AMX tiles: bf16 matrix multiply in hardware (Sapphire Rapids and later)"
    if feats["avx512_bf16"]:
        return True, "AVX-512 BF16 (vdpbf16ps dot products), no AMX: whether bf16 beats fp32 depends on the kernels"
    return False, "no AVX-512 BF16 or AMX: bf16 would be converted in software and run slower than fp32"


def matmul_peak(dtype: torch.dtype = torch.float32, n: int = 1024, repeat: int = 20, library: str = "default") -> float:
    """Measured peak GFLOP/s of an n x n x n matmul at this dtype, as BERT's layers call it (`F.linear`), or
    with `library="onednn"` through oneDNN's linear (`torch.ops.mkldnn._linear_pointwise`).

    On x86, fp32 `F.linear` calls MKL and bf16 calls oneDNN: comparing those two compares libraries as much as
    precisions, so `gemm_peaks` also measures fp32 on oneDNN. A peak is the best the hardware did, so this takes
    the fastest call (other work on the machine only ever slows calls down)."""
    a, w = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    if library == "onednn":
        def call():
            return torch.ops.mkldnn._linear_pointwise(a, w, None, "none", [], "")
    elif library == "default":
        def call():
            return torch.nn.functional.linear(a, w)
    else:
        raise ValueError(f"library={library!r}: choose 'default' (F.linear) or 'onednn'")
    timing = measure(call, warmup=2, repeat=repeat)
    return 2 * n**3 / min(timing.runs) / 1e9


def fp32_library() -> str:
    """Which library runs fp32 `F.linear` here: MKL on x86 builds that have it, else oneDNN or a BLAS."""
    return "MKL" if torch.backends.mkl.is_available() and platform.machine().lower() in {"x86_64", "amd64"} else "BLAS"


def gemm_peaks(n: int = 1024, repeat: int = 20, passes: int = 2) -> dict[str, float]:
    """Measured matmul GFLOP/s: fp32 as `F.linear` runs it (MKL on x86), fp32 and bf16 on oneDNN; the best of
    `passes` passes taken in turn, so a busy moment spoils one pass, not one library.

    bf16 vs fp32 *on the same library* is what the bf16 instructions buy; the fp32 libraries' ratio is what
    choosing oneDNN (TorchScript's oneDNN fusion, OpenVINO) buys. A library that cannot run here is left out."""
    calls = {f"fp32 {fp32_library()}": (torch.float32, "default"), "fp32 oneDNN": (torch.float32, "onednn"),
             "bf16 oneDNN": (torch.bfloat16, "onednn")}
    peaks: dict[str, float] = {}
    for _ in range(passes):
        for name, (dtype, library) in calls.items():
            try:
                peaks[name] = max(peaks.get(name, 0.0), matmul_peak(dtype, n, repeat, library))
            except (RuntimeError, NotImplementedError):  # no oneDNN in this build, or no bf16 kernel here
                continue
    return peaks


def encoder_flops(config, batch: int, seq: int) -> float:
    """FLOPs (two per multiply-add) of one BERT encoder forward: projections, feed-forward, attention scores."""
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens = batch * seq
    projections = 2 * tokens * h * (4 * h)  # Q, K, V and output: 4 matmuls of h x h
    feed_forward = 2 * tokens * h * inter * 2  # up and down
    attention = 2 * batch * seq * seq * h * 2  # Q K^T and weights x V
    return layers * (projections + feed_forward + attention)


BF16_PAYS = 1.2
"""bf16 paths are worth building where bf16 GEMMs run at least this many times fp32's on the same library."""


def bf16_speedup(peaks: dict[str, float]) -> float | None:
    """bf16 / fp32 GFLOP/s on oneDNN (the same library), from `gemm_peaks`; None if either was not measured."""
    if "bf16 oneDNN" not in peaks or "fp32 oneDNN" not in peaks:
        return None
    return peaks["bf16 oneDNN"] / peaks["fp32 oneDNN"]


def peaks_verdict(peaks: dict[str, float], cls: str | None = None) -> str:
    """One sentence from `gemm_peaks`: does bf16 pay on this CPU, and what does the fp32 library cost?"""
    cls = cls or cpu_class()
    ratio = bf16_speedup(peaks)
    if ratio is None:
        return f"{cls}: bf16 could not be measured on oneDNN here, so bf16 paths are not worth building"
    pays = "worth building" if ratio >= BF16_PAYS or cls == "amx" else "not worth building"
    mkl = [name for name in peaks if name.startswith("fp32") and name != "fp32 oneDNN"]
    share = peaks[mkl[0]] / peaks["fp32 oneDNN"] if mkl else 0.0
    library = f"; fp32 on {mkl[0].split()[1]} (what F.linear calls) runs at {share:.2f}x oneDNN's fp32" if mkl else ""
    return (f"{cls}: bf16 runs at {ratio:.2f}x fp32 on the same library (oneDNN), so bf16 paths are {pays} "
            f"here{library}")
