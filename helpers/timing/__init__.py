"""Timing and comparing ways to run a model on a CPU, introduced in notebook 05 (and used by 02, 04, 07, 08).

Everything is importable from `helpers.timing`; each piece lives in the submodule named for it:
- `clock`: `measure` (warm-up, repeats, median, spread), `Timing`, `machine`, `provenance`;
- `comparison`: `compare` (candidates interleaved, accuracy and a fallback guard beside every speed), `Candidate`,
  `Comparison`;
- `paths`: every CPU path as a `Candidate` builder (eager, TorchScript, torch.compile, AOTInductor, ONNX Runtime,
  OpenVINO, int8);
- `hardware`: CPU features and class, measured matmul peaks, a BERT's FLOPs;
- `results`: benchmark results kept per machine;
- `plots`: speedup bars and rooflines (matplotlib imported only when drawing).
"""

from helpers.timing.clock import Timing, machine, measure, percentile, provenance, summarize
from helpers.timing.comparison import Candidate, Comparison, Row, compare, python_calls
from helpers.timing.hardware import bf16_support, cpu_class, cpu_features, encoder_flops, matmul_peak
from helpers.timing.paths import (
    SENTENCES,
    aoti,
    compiled,
    eager,
    int8_dynamic,
    onnx_file,
    onnxruntime,
    openvino,
    sentence_inputs,
    traced,
)
from helpers.timing.plots import plot, roofline
from helpers.timing.results import keep_previous, machine_slug, read_all, results_dir

__all__ = [
    "SENTENCES", "Candidate", "Comparison", "Row", "Timing", "aoti", "bf16_support", "compare", "compiled",
    "cpu_class", "cpu_features", "eager", "encoder_flops", "int8_dynamic", "keep_previous", "machine",
    "machine_slug", "matmul_peak", "measure", "onnx_file", "onnxruntime", "openvino", "percentile", "plot",
    "provenance", "python_calls", "read_all", "results_dir", "roofline", "sentence_inputs", "summarize", "traced",
]
