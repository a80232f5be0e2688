"""Every way notebook 05 runs one model on a CPU, each built into a `Candidate` with its set-up time.

Eager (fp32, bf16, autocast), TorchScript (trace, freeze, optimize_for_inference), torch.compile,
torch.export + AOTInductor (a checked `.pt2` from `helpers.export`), ONNX Runtime, OpenVINO (optional) and int8
dynamic quantisation. Notebook 05 shows each call raw once; these builders are what the benchmark and
`fastest` reuse.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from helpers import course, files, shapes, tracing
from helpers.timing.comparison import Candidate

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


def sentence_inputs(tokenizer, sentences: Sequence[str], seq: int = 128) -> Inputs:
    """(input_ids, attention_mask), each N x seq: real sentences padded (or truncated) to a fixed length."""
    return shapes.dummy_inputs(tokenizer, list(sentences), length=seq)


def _timed(build: Callable[[], object]) -> tuple[object, float]:
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
    """`tracing.trace`, then optionally torch.jit.freeze or torch.jit.optimize_for_inference (which freezes)."""
    def build():
        module = tracing.trace(model, inputs)
        with course.known_noise():  # torch.jit.* deprecation notices, explained in notebook 01
            if optimize:
                return torch.jit.optimize_for_inference(module)
            return torch.jit.freeze(module) if freeze else module
    module, seconds = _timed(build)
    return Candidate(module, setup_s=seconds, note="+".join(n for n, on in (("freeze", freeze),
                                                                           ("optimize", optimize)) if on))


def compiled(model: torch.nn.Module, inputs: Inputs, *, max_autotune: bool = False, cpp_wrapper: bool = False,
             freezing: bool = True) -> Candidate:
    """torch.compile (Inductor), compiled now by one call under the settings given.

    Freezing is set through `torch._inductor.config` for the compile: on torch 2.13 passing
    `options={"freezing": True}` to torch.compile did not freeze. The model's Python code is watched:
    if a later call runs it, the guard in `compare` reports a fallback to eager.
    """
    settings = {"freezing": freezing, "max_autotune": max_autotune, "cpp_wrapper": cpp_wrapper,
                "cpp.enable_concat_linear": True}  # Q, K and V projections as one matmul
    module = torch.compile(model)

    def build():
        with torch._inductor.config.patch(**settings), torch.inference_mode():
            module(*inputs)
        return module
    _, seconds = _timed(build)
    return Candidate(module, setup_s=seconds, watch=model,
                     note="+".join(name for name, on in settings.items() if on) or "defaults")


def aoti(model: torch.nn.Module, inputs: Inputs, path: str | os.PathLike | None = None, *,
         dtype: torch.dtype | None = None, max_autotune: bool = False, dynamic: bool = False) -> Candidate:
    """torch.export + AOTInductor: `export.export_program`, `export.package` (a checked `.pt2` at `path`, default
    a scratch folder) and `export.load_package`. Static shapes by default: the package serves `inputs`' shapes."""
    from helpers import export  # torch.export: absent on the Inf1 stack (torch 1.13), which imports this package

    path = Path(path) if path else course.workdir("aoti") / "model.pt2"

    def build():
        program = export.export_program(model, inputs, dynamic=dynamic)
        export.package(program, path, dtype=dtype, max_autotune=max_autotune)
        return export.load_package(path)
    package, seconds = _timed(build)
    note = "+".join(n for n, on in ((str(dtype).removeprefix("torch."), dtype), ("max_autotune", max_autotune)) if on)
    return Candidate(package, setup_s=seconds, note=note)


def onnx_file(model: torch.nn.Module, inputs: Inputs, folder: str | os.PathLike | None = None) -> tuple[Path, float]:
    """Export to ONNX with dynamic batch and sequence axes (legacy TorchScript-based exporter, whose graph
    ONNX Runtime's BERT fusions recognise). Returns (path, seconds)."""
    path = Path(folder or course.workdir("onnx")) / "model.onnx"
    files.refuse_overwrite(path)  # the exporter would silently replace it
    axes = {name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask")}

    def build():
        with warnings.catch_warnings(), course.known_noise():
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
        with course.known_noise():
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
