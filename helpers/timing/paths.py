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


def _onednn_groups() -> int:
    """oneDNN Graph partitions in the graph TorchScript's executor ran last (0: nothing was fused)."""
    return str(torch.jit.last_executed_optimized_graph()).count("prim::oneDNNFusionGroup")


def traced(model: torch.nn.Module, inputs: Inputs, *, freeze: bool = False, optimize: bool = False,
           onednn: bool = False) -> Candidate:
    """`tracing.trace`, then optionally torch.jit.freeze or torch.jit.optimize_for_inference (which freezes).

    `onednn=True` (x86 only; implies freeze) traces and freezes with oneDNN Graph fusion on
    (`torch.jit.enable_onednn_fusion(True)`) and makes three calls, on which TorchScript's profiling executor
    forms the fused partitions; then the setting goes back to what it was, so no other module changes. The
    module keeps its fused plan for `inputs`' shapes; saved and loaded again, it fuses only where fusion is on.
    """
    before = torch.jit.onednn_fusion_enabled()

    def build():
        module = tracing.trace(model, inputs)
        with course.known_noise():  # torch.jit.* deprecation notices, explained in notebook 01
            if optimize:
                return torch.jit.optimize_for_inference(module)
            module = torch.jit.freeze(module) if freeze or onednn else module
        for _ in range(3 if onednn else 0):  # profiled, then optimised (and fused) on these calls
            module(*inputs)
        return module
    torch.jit.enable_onednn_fusion(onednn or before)
    try:
        module, seconds = _timed(build)
        groups = _onednn_groups() if onednn else 0
    finally:
        torch.jit.enable_onednn_fusion(before)
    note = "+".join(n for n, on in (("freeze", freeze or onednn), ("optimize", optimize),
                                    (f"oneDNN fusion ({groups} groups)", onednn)) if on)
    return Candidate(module, setup_s=seconds, note=note)


def compiled(model: torch.nn.Module, inputs: Inputs, *, max_autotune: bool = False, cpp_wrapper: bool = False,
             freezing: bool = True) -> Candidate:
    """torch.compile (Inductor) of a fresh copy of `model`, for `inputs`' shapes only, compiled now by one call.

    A copy, because dynamo caches compiled code per module object: a second torch.compile of the same object
    under other Inductor settings silently reuses the first. `dynamic=False`, because a second shape of the same
    model code would otherwise be recompiled with a symbolic batch (slower kernels). Freezing is set through
    `torch._inductor.config` for the compile: on torch 2.13 `options={"freezing": True}` did not freeze. The
    copy's Python code is watched: if a later call runs it, the guard in `compare` reports a fallback to eager.
    """
    settings = {"freezing": freezing, "max_autotune": max_autotune, "cpp_wrapper": cpp_wrapper,
                "cpp.enable_concat_linear": True}  # Q, K and V projections as one matmul
    fresh = copy.deepcopy(model).eval()
    module = torch.compile(fresh, dynamic=False)

    def build():
        with torch._inductor.config.patch(**settings), torch.inference_mode():
            module(*inputs)
        return module
    _, seconds = _timed(build)
    return Candidate(module, setup_s=seconds, watch=fresh,
                     note="+".join(name for name, on in settings.items() if on) or "defaults")


def aoti(model: torch.nn.Module, inputs: Inputs, path: str | os.PathLike | None = None, *,
         dtype: torch.dtype | None = None, max_autotune: bool = False, dynamic: bool = False) -> Candidate:
    """torch.export + AOTInductor: `export.export_program`, `export.package` (a checked `.pt2` at `path`, default
    a scratch folder) and `export.load_package`. Static shapes by default: the package serves `inputs`' shapes.
    `dtype` casts a copy of the model before it is exported (casting the exported program instead fails for
    BERT's eager attention, whose mask arithmetic was recorded with an fp32 constant)."""
    from helpers import export  # torch.export: absent on the Inf1 stack (torch 1.13), which imports this package

    path = Path(path) if path else course.workdir("aoti") / "model.pt2"
    source = copy.deepcopy(model).to(dtype).eval() if dtype else model

    def build():
        program = export.export_program(source, inputs, dynamic=dynamic)
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


def ort_optimized(path: str | os.PathLike, config) -> tuple[Path, dict[str, int], float]:
    """ONNX Runtime's transformer optimizer on an exported BERT (`config` gives heads and hidden size): fuses
    attention, SkipLayerNormalization, BiasGelu and the embeddings. Returns (new file beside `path`, the fused
    operators it counted, seconds)."""
    from onnxruntime.transformers import optimizer

    out = Path(path).with_suffix(".optimized.onnx")
    files.refuse_overwrite(out)

    def build():
        model = optimizer.optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size)
        model.save_model_to_file(str(out))
        return {name: count for name, count in model.get_fused_operator_statistics().items() if count}
    fused, seconds = _timed(build)
    return out, fused, seconds


def onnxruntime(source, threads: int | None = None, setup_s: float = 0.0) -> Candidate:
    """An ONNX Runtime CPU session wrapped to take and return tensors: `source` is an `InferenceSession` you
    made, or an ONNX file, opened with all graph optimisations on and its idle threads sleeping, not spinning."""
    import onnxruntime as ort

    session, seconds = source, 0.0
    if not isinstance(source, ort.InferenceSession):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # By default ORT's idle threads keep spinning for tens of ms after a call, which slows whatever runs next
        # on the same cores (seen here: the next eager call, even 20 ms later). Sleep instead: a fair neighbour.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        session, seconds = _timed(lambda: ort.InferenceSession(str(source), options, providers=providers))
    names = [i.name for i in session.get_inputs()]

    def run(input_ids, attention_mask):
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        if "token_type_ids" in names:  # the transformer optimizer's fused embeddings take it: zeros, as BERT's default
            feeds["token_type_ids"] = torch.zeros_like(input_ids).numpy()
        return [torch.from_numpy(out) for out in session.run(None, feeds)]
    return Candidate(run, setup_s=setup_s + seconds)


def openvino_model(model: torch.nn.Module, inputs: Inputs) -> tuple[object, float]:
    """OpenVINO's model (IR) converted from the PyTorch module: (ov.Model, seconds). An optional extra."""
    try:
        import openvino as ov
    except ImportError as err:
        raise ImportError("OpenVINO is an optional extra: `make bench` installs envs/bench.txt, "
                          "or `.venv/bin/pip install -r envs/bench.txt`") from err

    def build():
        with course.known_noise():
            return ov.convert_model(model, example_input=inputs)
    return _timed(build)


def openvino(ir, inputs: Inputs, *, bf16: bool, hint: str = "LATENCY", static: bool = True,
             threads: int | None = None, setup_s: float = 0.0) -> Candidate:
    """OpenVINO's CPU plugin at its best for `inputs`: `bf16` sets its inference precision, `hint` its
    performance mode ("LATENCY": one stream on every core; "THROUGHPUT": several streams, a batch split across
    them), `static` fixes the input shapes to `inputs`' (faster kernels). `ir` comes from `openvino_model`.
    One inference request is reused, and each call copies its output (the request overwrites it next time)."""
    import openvino as ov

    model = ir.clone()
    if static:
        model.reshape({i: ov.PartialShape(list(t.shape)) for i, t in enumerate(inputs)})
    config = {"INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32", "PERFORMANCE_HINT": hint,
              "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}
    net, seconds = _timed(lambda: ov.Core().compile_model(model, "CPU", config))
    streams = int(net.get_property("NUM_STREAMS"))
    if streams > 1 and not static:  # a static shape is the whole batch: it cannot be split
        run = _openvino_streams(net, streams)
    else:
        request = net.create_infer_request()

        def run(*tensors):
            request.infer([t.numpy() for t in tensors], share_inputs=True)
            return [torch.from_numpy(request.get_output_tensor(i).data.copy()) for i in range(len(net.outputs))]
    note = f"{config['INFERENCE_PRECISION_HINT']} {hint.lower()}{' static' if static else ''}, {streams} stream(s)"
    return Candidate(run, setup_s=setup_s + seconds, note=note)


def _openvino_streams(net, streams: int) -> Callable[..., list[torch.Tensor]]:
    """A call that splits its batch across `streams` asynchronous requests (how THROUGHPUT serves a batch)."""
    import openvino as ov

    queue, done = ov.AsyncInferQueue(net, streams), {}
    queue.set_callback(lambda request, i: done.__setitem__(i, request.get_output_tensor(0).data.copy()))

    def run(*tensors):
        done.clear()
        chunks = [c for c in zip(*(t.tensor_split(streams) for t in tensors)) if c[0].shape[0]]  # batch 1: one
        for i, chunk in enumerate(chunks):
            queue.start_async([t.numpy() for t in chunk], userdata=i)
        queue.wait_all()
        return [torch.cat([torch.from_numpy(done[i]) for i in sorted(done)])]
    return run


def int8_dynamic(model: torch.nn.Module, keep: Sequence[str] = (), per_channel: bool = False) -> Candidate:
    """`torch.ao.quantization.quantize_dynamic` on a copy: Linear layers get int8 weights, activations are
    quantised per call; the Linear layers named in `keep` stay fp32 (see `timing.int8.quantized`)."""
    from helpers.timing import int8

    quantized, seconds = _timed(lambda: int8.quantized(model, keep=keep, per_channel=per_channel))
    note = "dynamic int8 Linear" + (" per-channel" if per_channel else "")
    note += f", {len(keep)} kept fp32" if keep else ""
    return Candidate(quantized, setup_s=seconds, note=note)
