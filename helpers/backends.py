"""Every way notebook 05 runs one model on a CPU, each built into a `speed.Candidate` with its set-up time.

Eager (fp32, bf16, autocast), TorchScript (trace, freeze, optimize_for_inference), torch.compile,
torch.export + AOTInductor, ONNX Runtime, OpenVINO (optional) and int8 dynamic quantisation. Also what
this CPU can do (`cpu_features`), its measured matmul peak and a BERT encoder's FLOP count.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from helpers import bench, quiet
from helpers.inputs import dummy_inputs
from helpers.speed import Candidate

Inputs = tuple[torch.Tensor, ...]

SENTENCES = [
    "TorchScript records the operations a model runs.",
    "A traced model can be saved and loaded without Python code.",
    "The tokenizer turns text into input ids and an attention mask.",
    "Padding makes every sentence in a batch the same length.",
    "Compiled code is only faster if it still computes the same answer.",
    "Brain floating point keeps the range of fp32 with fewer mantissa bits.",
    "Quantised weights take a quarter of the memory of fp32 ones.",
    "Short one.",
    "Where is the nearest train station?",
    "The cat sat quietly on the warm windowsill all afternoon.",
    "Interest rates rose for the third month in a row.",
    "She plays the cello in a string quartet on Sundays.",
    "Mix the flour and butter before adding the eggs.",
    "The server answered every request within fifty milliseconds.",
    "Rain is expected over the mountains tomorrow evening.",
    "Sentence embeddings place similar meanings close together.",
]
"""16 real sentences: accuracy is the lowest cosine of their mean-pooled embeddings vs fp32 eager."""


def cpu_features() -> dict[str, bool]:
    """What this CPU offers PyTorch for fast fp32/bf16/int8 maths, as PyTorch itself detects it."""
    cpu = torch.cpu
    return {
        "avx2": cpu._is_avx2_supported(), "avx512": cpu._is_avx512_supported(),
        "avx512_bf16": cpu._is_avx512_bf16_supported(), "amx": cpu._is_amx_tile_supported(),
        "vnni (int8)": cpu._is_vnni_supported(),
    }


def bf16_support() -> tuple[bool, str]:
    """(fast bf16 available, why): AMX tiles or AVX-512 BF16 dot products; otherwise bf16 is emulated."""
    feats = cpu_features()
    if feats["amx"]:
        return True, "AMX tiles: bf16 matrix multiply in hardware (Sapphire Rapids and later)"
    if feats["avx512_bf16"]:
        return True, "AVX-512 BF16 (vdpbf16ps dot products), no AMX: bf16 GEMMs at about 2x fp32 throughput per instruction"
    return False, "no AVX-512 BF16 or AMX: bf16 would be converted in software and run slower than fp32"


def matmul_peak(dtype: torch.dtype = torch.float32, n: int = 1024, repeat: int = 20) -> float:
    """Measured peak GFLOP/s of an n x n x n matmul (`F.linear`, as BERT's layers call it) at this dtype.

    A peak is the best the hardware did, so this takes the fastest call (other work on the machine only
    ever slows calls down)."""
    a, w = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    timing = bench.measure(lambda: torch.nn.functional.linear(a, w), warmup=2, repeat=repeat)
    return 2 * n**3 / min(timing.runs) / 1e9


def encoder_flops(config, batch: int, seq: int) -> float:
    """Multiply-add FLOPs of one BERT encoder forward: projections, feed-forward, attention scores."""
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens = batch * seq
    projections = 2 * tokens * h * (4 * h)  # Q, K, V and output: 4 matmuls of h x h
    feed_forward = 2 * tokens * h * inter * 2  # up and down
    attention = 2 * batch * seq * seq * h * 2  # Q K^T and weights x V
    return layers * (projections + feed_forward + attention)


def sentence_inputs(tokenizer, sentences: Sequence[str], seq: int = 128) -> Inputs:
    """(input_ids, attention_mask), each N x seq: real sentences padded (or truncated) to a fixed length."""
    return dummy_inputs(tokenizer, list(sentences), length=seq)


def _timed(build: Callable[[], Callable[..., object]]) -> tuple[Callable[..., object], float]:
    """Run a builder under no_grad; return what it built and how long it took (seconds)."""
    start = time.perf_counter()
    with torch.no_grad():
        built = build()
    return built, time.perf_counter() - start


def eager(model: torch.nn.Module, dtype: torch.dtype = torch.float32, autocast: bool = False) -> Candidate:
    """The Python model as is; `dtype=torch.bfloat16` converts a copy, `autocast=True` keeps fp32 weights."""
    if autocast:
        def run(*inputs):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model(*inputs)
        return Candidate(run, note="autocast bf16")
    if dtype == torch.float32:
        return Candidate(model)
    converted, seconds = _timed(lambda: copy.deepcopy(model).to(dtype).eval())
    return Candidate(converted, setup_s=seconds, note=str(dtype).removeprefix("torch."))


def traced(model: torch.nn.Module, inputs: Inputs, *, freeze: bool = False, optimize: bool = False) -> Candidate:
    """torch.jit.trace, then optionally torch.jit.freeze or torch.jit.optimize_for_inference (which freezes)."""
    def build():
        with quiet.known_noise():  # torch.jit.* deprecation notices, explained in notebook 01
            module = torch.jit.trace(model, inputs)
            if optimize:
                return torch.jit.optimize_for_inference(module)
            return torch.jit.freeze(module) if freeze else module
    module, seconds = _timed(build)
    return Candidate(module, setup_s=seconds)


def compiled(model: torch.nn.Module, inputs: Inputs, *, max_autotune: bool = False, cpp_wrapper: bool = False,
             freezing: bool = True) -> Candidate:
    """torch.compile (Inductor), compiled now by one call under the settings given.

    Freezing is set through `torch._inductor.config` for the compile: on torch 2.13 passing
    `options={"freezing": True}` to torch.compile did not freeze. The model's Python code is watched:
    if a later call runs it, the guard in `speed.compare` reports a fallback to eager.
    """
    settings = {"freezing": freezing, "max_autotune": max_autotune, "cpp_wrapper": cpp_wrapper,
                "cpp.enable_concat_linear": True}  # Q, K and V projections as one matmul
    module = torch.compile(model)

    def build():
        with torch._inductor.config.patch(**settings), torch.inference_mode():
            module(*inputs)
        return module
    _, seconds = _timed(build)
    return Candidate(module, setup_s=seconds, watch=model, note=_settings_note(settings))


def _settings_note(settings: dict[str, bool]) -> str:
    return "+".join(name for name, on in settings.items() if on) or "defaults"


def aoti_package(model: torch.nn.Module, inputs: Inputs, path: str | os.PathLike, *, max_autotune: bool = False,
                 freezing: bool = True) -> float:
    """torch.export the model at these input shapes and compile it ahead of time into a .pt2 package
    (frozen weights, Q/K/V projections concatenated into one matmul).

    Refuses to overwrite `path`. Returns the export+compile seconds.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists: choose another path or delete it yourself")
    settings = {"freezing": freezing, "max_autotune": max_autotune, "cpp.enable_concat_linear": True}

    def build():
        program = torch.export.export(model, inputs)
        with torch._inductor.config.patch(**settings):
            return torch._inductor.aoti_compile_and_package(program, package_path=str(path))
    _, seconds = _timed(build)
    return seconds


def aoti_load(path: str | os.PathLike, setup_s: float = 0.0, note: str = "") -> Candidate:
    """Load an AOTInductor package: a compiled .so plus weights, no Python model code involved."""
    runner, seconds = _timed(lambda: torch._inductor.aoti_load_package(str(path)))
    return Candidate(runner, setup_s=setup_s + seconds, note=note)


def onnx_file(model: torch.nn.Module, inputs: Inputs, folder: str | os.PathLike) -> tuple[Path, float]:
    """Export to ONNX with dynamic batch and sequence axes (legacy TorchScript-based exporter, whose graph
    ONNX Runtime's BERT fusions recognise). Returns (path, seconds)."""
    path = Path(folder) / "model.onnx"
    if path.exists():
        raise FileExistsError(f"{path} already exists: export into an empty folder")
    axes = {name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask")}

    def build():
        with warnings.catch_warnings(), quiet.known_noise():
            warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export",
                                    category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=r"The feature will be removed", category=DeprecationWarning)
            torch.onnx.export(model, inputs, str(path), dynamo=False, input_names=list(axes),
                              output_names=["last_hidden_state", "pooler_output"], dynamic_axes=axes,
                              opset_version=17)
    _, seconds = _timed(build)
    return path, seconds


def onnxruntime(path: str | os.PathLike, threads: int | None = None, setup_s: float = 0.0) -> Candidate:
    """An ONNX Runtime CPU session (all graph optimisations on) wrapped to take and return tensors."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # By default ORT's idle threads keep spinning for tens of ms after a call, which slows whatever runs next on
    # the same cores (seen here: the next eager call, even 20 ms later). Sleep instead: a fair neighbour.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    session, seconds = _timed(lambda: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]))

    def run(input_ids, attention_mask):
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        return [torch.from_numpy(out) for out in session.run(None, feeds)]
    return Candidate(run, setup_s=setup_s + seconds)


def openvino(model: torch.nn.Module, inputs: Inputs, *, bf16: bool, threads: int | None = None) -> Candidate:
    """OpenVINO's CPU plugin from the PyTorch model (latency mode); `bf16` sets its inference precision."""
    try:
        import openvino as ov
    except ImportError as err:
        raise ImportError("OpenVINO is an optional extra: `make bench` installs envs/bench.txt, "
                          "or `.venv/bin/pip install -r envs/bench.txt`") from err
    config = {"INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32", "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}

    def build():
        with quiet.known_noise():
            converted = ov.convert_model(model, example_input=inputs)
        return ov.Core().compile_model(converted, "CPU", config)
    net, seconds = _timed(build)

    def run(input_ids, attention_mask):
        outputs = net([input_ids.numpy(), attention_mask.numpy()])
        return [torch.from_numpy(outputs[i]) for i in range(len(outputs))]
    return Candidate(run, setup_s=seconds, note="bf16" if bf16 else "f32")


def int8_dynamic(model: torch.nn.Module) -> Candidate:
    """Linear layers quantised to int8 weights with per-batch activation scales (torch.ao, deprecated)."""
    def build():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated",
                                    category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor", category=UserWarning)
            return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
    quantized, seconds = _timed(build)
    return Candidate(quantized, setup_s=seconds, note="dynamic int8 Linear")


def scratch_folder() -> Path:
    """A fresh temporary folder for exported files (never a user's folder, so nothing is overwritten)."""
    return Path(tempfile.mkdtemp(prefix="course05-"))
