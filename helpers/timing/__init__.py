"""Timing and comparing ways to run a model on a CPU, introduced in notebook 05 (and used by 02, 04, 07, 08).

Everything is importable from `helpers.timing`; each piece lives in the submodule named for it:
- `clock`: `measure` (warm-up, repeats, median, spread), `Timing`, `machine`, `provenance`;
- `comparison`: `compare` (candidates interleaved, accuracy and a fallback guard beside every speed), `Candidate`,
  `Comparison`;
- `paths`: every CPU path as a `Candidate` builder (eager, TorchScript with or without oneDNN fusion,
  torch.compile, AOTInductor, ONNX Runtime, OpenVINO, int8);
- `hardware`: CPU features and class, measured GEMM peaks per library and precision, a BERT's FLOPs;
- `choice`: `fastest`, the fastest accurate path for this CPU, picked by measurement, saved as a checked file;
- `int8`: why dynamic int8 loses accuracy, one error source and one layer at a time;
- `verdict`: the course's fastest path against the best peer engine, per machine, in words;
- `results`: benchmark results kept per machine;
- `plots`: speedup bars and rooflines (matplotlib imported only when drawing).
"""

from helpers.timing.clock import Timing, machine, measure, percentile, provenance, summarize
from helpers.timing.comparison import Candidate, Comparison, Row, compare, python_calls
from helpers.timing.choice import Choice, fastest
from helpers.timing.hardware import (
    bf16_support,
    cpu_class,
    cpu_features,
    encoder_flops,
    gemm_peaks,
    matmul_peak,
    peaks_verdict,
)
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
    "SENTENCES", "Candidate", "Choice", "Comparison", "Row", "Timing", "aoti", "bf16_support", "compare",
    "compiled", "cpu_class", "cpu_features", "eager", "encoder_flops", "fastest", "gemm_peaks", "int8_dynamic",
    "keep_previous", "machine", "machine_slug", "matmul_peak", "measure", "onnx_file", "onnxruntime", "openvino",
    "peaks_verdict", "percentile", "plot", "provenance", "python_calls", "read_all", "results_dir", "roofline",
    "sentence_inputs", "summarize", "traced",
]
