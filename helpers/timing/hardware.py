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


def matmul_peak(dtype: torch.dtype = torch.float32, n: int = 1024, repeat: int = 20) -> float:
    """Measured peak GFLOP/s of an n x n x n matmul (`F.linear`, as BERT's layers call it) at this dtype.

    A peak is the best the hardware did, so this takes the fastest call (other work on the machine only
    ever slows calls down)."""
    a, w = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    timing = measure(lambda: torch.nn.functional.linear(a, w), warmup=2, repeat=repeat)
    return 2 * n**3 / min(timing.runs) / 1e9


def encoder_flops(config, batch: int, seq: int) -> float:
    """Multiply-add FLOPs of one BERT encoder forward: projections, feed-forward, attention scores."""
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens = batch * seq
    projections = 2 * tokens * h * (4 * h)  # Q, K, V and output: 4 matmuls of h x h
    feed_forward = 2 * tokens * h * inter * 2  # up and down
    attention = 2 * batch * seq * seq * h * 2  # Q K^T and weights x V
    return layers * (projections + feed_forward + attention)
