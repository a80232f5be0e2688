"""helpers.neuron on a machine without Inferentia: detection, the CPU fallback, and option reporting.

No Neuron package can be installed here (the real ones live only on AWS's pip repository), so the tests that
need one *simulate* it with a package directory on sys.path, and say so. The placeholder simulation is
byte-for-byte what PyPI's torch-neuron 1.0 / torch-neuronx 1.0 wheels install: a `torch_neuron/__init__.py`
(or `torch_neuronx/__init__.py`) whose only line raises ImportError("WRONG PACKAGE. ..."), plus its dist-info.
"""

import importlib.util
import sys

import pytest
import torch

from helpers import accuracy, files, models, neuron, tracing

NEURON_INSTALLED = any(importlib.util.find_spec(m) is not None for m in ("torch_neuron", "torch_neuronx"))
no_neuron_here = pytest.mark.skipif(NEURON_INSTALLED, reason="a Neuron package is installed: needs a machine without")
ON_NEURON = neuron.detect().backend != "cpu"

PLACEHOLDER_LINE = (
    'raise ImportError("WRONG PACKAGE. Please install the package from Neuron Repository - '
    'pip.repos.neuron.amazonaws.com")\n'
)


def fake_package(root, module: str, dist: str, version: str, init: str) -> None:
    """Install-like layout of a wheel: `module/__init__.py` and `<module>-<version>.dist-info/METADATA`."""
    (root / module).mkdir()
    (root / module / "__init__.py").write_text(init)
    info = root / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{module}\n")


@pytest.fixture
def on_path(tmp_path, monkeypatch):
    """A folder put first on sys.path; anything imported from it is forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("torch_neuron", "torch_neuronx"):
        sys.modules.pop(name, None)


@no_neuron_here
def test_detect_reports_cpu_and_why_on_this_machine():
    detection = neuron.detect()
    assert detection.backend == "cpu"
    assert str(detection) == (
        "cpu: no Neuron package: neither torch_neuron (Inf1) nor torch_neuronx (Inf2/Trn1) is installed"
    )


@no_neuron_here
@pytest.mark.parametrize("module, dist", [("torch_neuron", "torch-neuron"), ("torch_neuronx", "torch-neuronx")])
def test_detect_reports_the_pypi_placeholder(on_path, module, dist):
    # Simulates `pip install torch-neuron` from PyPI (version 1.0), which this project must never really do.
    fake_package(on_path, module, dist, "1.0", PLACEHOLDER_LINE)
    with pytest.raises(ImportError, match="WRONG PACKAGE"):
        importlib.import_module(module)
    detection = neuron.detect()
    assert detection.backend == "cpu"
    assert f"{module} is PyPI's placeholder {dist} 1.0" in detection.reason
    assert "WRONG PACKAGE" in detection.reason and f"pip uninstall {dist}" in detection.reason
    assert neuron.NEURON_REPO in detection.reason and "\n" not in detection.reason


@no_neuron_here
def test_detect_package_without_device_is_cpu_and_with_device_is_neuron(on_path, tmp_path_factory):
    # Simulates a real torch-neuronx that imports fine (it cannot be installed here) and a /dev/neuron0 node.
    fake_package(on_path, "torch_neuronx", "torch-neuronx", "2.9.0.2.15.0", "")
    no_devices = str(tmp_path_factory.mktemp("dev") / "neuron*")
    detection = neuron.detect(device_glob=no_devices)
    assert detection.backend == "cpu"
    assert "torch_neuronx 2.9.0.2.15.0 is installed but there is no" in detection.reason
    dev = tmp_path_factory.mktemp("dev")
    (dev / "neuron0").touch()
    detection = neuron.detect(device_glob=str(dev / "neuron*"))
    assert detection.backend == "inf2" and detection.devices == (str(dev / "neuron0"),)


@no_neuron_here
def test_detect_reports_a_broken_install(on_path):
    fake_package(on_path, "torch_neuron", "torch-neuron", "1.13.1.2.10.12.0", 'raise RuntimeError("bad torch")\n')
    detection = neuron.detect()
    assert detection.backend == "cpu"
    assert detection.reason == "torch_neuron is installed but does not import (RuntimeError: bad torch)"


@no_neuron_here
def test_fallback_trace_equals_eager(minilm, example):
    model, tokenizer = minilm
    traced, record = neuron.trace_for_inferentia(model, example)
    assert record.backend == "cpu" and record.function.startswith("torch.jit.trace")
    assert record.input_shapes == [tuple(t.shape) for t in example] and record.compile_seconds > 0
    other = tokenizer(["one more sentence of another length"], return_tensors="pt")
    report = tracing.verify(traced, model, [example, (other["input_ids"], other["attention_mask"])])
    assert report.ok


@no_neuron_here
def test_options_that_do_not_apply_are_reported_not_dropped():
    model = models.tiny_model("bert", task="base", torchscript=True)  # the model does not matter here
    example = (torch.randint(0, 1000, (2, 8)), torch.ones(2, 8, dtype=torch.long))
    options = dict(dynamic_batch_size=True, compiler_args=["--fast-math", "none"], check_inputs=[example])
    with pytest.warns(neuron.OptionNotApplied) as caught:
        _, record = neuron.trace_for_inferentia(model, example, **options)
    reported = [str(w.message).split()[0] for w in caught if w.category is neuron.OptionNotApplied]
    assert sorted(reported) == ["compiler_args", "dynamic_batch_size"]
    assert list(record.applied) == ["check_inputs"]
    assert record.not_applied["dynamic_batch_size"].startswith("only torch.neuron.trace take(s) it")
    assert "NOT applied  compiler_args: only torch.neuron.trace and torch_neuronx.trace" in str(record)


def test_options_are_split_per_backend():
    options = dict(dynamic_batch_size=True, compiler_args="-O2", inline_weights_to_neff=False, strict=False)
    inf1, skipped1 = neuron.split_options("inf1", options)
    inf2, skipped2 = neuron.split_options("inf2", options)
    assert sorted(inf1) == ["compiler_args", "dynamic_batch_size", "strict"]
    assert list(skipped1) == ["inline_weights_to_neff"]
    assert sorted(inf2) == ["compiler_args", "inline_weights_to_neff"]
    assert sorted(skipped2) == ["dynamic_batch_size", "strict"]


def test_a_misspelt_option_is_an_error(minilm, example):
    with pytest.raises(TypeError, match=r"unknown compiler option\(s\) \['dynamic_batchsize'\].*check the spelling"):
        neuron.trace_for_inferentia(minilm[0], example, dynamic_batchsize=True)


def test_require_shape_enforces_the_compiled_shape():
    record = neuron.TraceRecord("cpu", "f", "r", [(8, 128), (8, 128)], 0.1)
    neuron.require_shape(record, (torch.ones(8, 128), torch.ones(8, 128)))
    with pytest.raises(ValueError, match="shape 1x20, 1x20 but the module was compiled for 8x128, 8x128 - pad"):
        neuron.require_shape(record, (torch.ones(1, 20), torch.ones(1, 20)))
    record.applied["dynamic_batch_size"] = True
    neuron.require_shape(record, (torch.ones(3, 128), torch.ones(3, 128)))
    with pytest.raises(ValueError):
        neuron.require_shape(record, (torch.ones(3, 64), torch.ones(3, 64)))


def test_scatter_gather_equals_one_call(traced_minilm, example):
    batch = tuple(torch.cat([t, t], dim=0) for t in example)  # 6 rows
    parts = neuron.scatter_gather(traced_minilm, batch, parts=3)
    with torch.no_grad():
        assert accuracy.close(parts, traced_minilm(*batch)), "other batch sizes round differently, within tolerance"
    with pytest.raises(ValueError, match="batch 6 does not split into 4 equal parts"):
        neuron.scatter_gather(traced_minilm, batch, parts=4)


def test_operator_counts_see_every_linear_layer(minilm, traced_minilm):
    counts = neuron.operator_counts(traced_minilm)
    layers = minilm[0].config.num_hidden_layers
    assert counts["aten::linear"] == 6 * layers + 1  # q, k, v, attention out, intermediate, output; pooler


def test_benchmark_arithmetic_on_a_fake_clock():
    now = [0.0]

    def double(x: torch.Tensor) -> torch.Tensor:  # each call takes 1/512 s of fake time
        now[0] += 1 / 512
        return x * 2

    result = neuron.benchmark(double, torch.ones(4, 3), workers=1, duration=0.25, warmup=1, clock=lambda: now[0])
    assert result.calls == 128 and result.batch_size == 4 and result.workers == 1, "0.25 s of 1/512 s calls"
    assert result.p50_ms == result.p99_ms == pytest.approx(1000 / 512)
    assert result.inferences_per_s == pytest.approx(128 * 4 / 0.25)
    with pytest.raises(ValueError, match="workers >= 1"):
        neuron.benchmark(double, torch.ones(1), workers=0)


def test_benchmark_raises_what_a_worker_raised():
    calls = []

    def flaky(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("the device went away")
        return x

    with pytest.raises(RuntimeError, match="the device went away"):
        neuron.benchmark(flaky, torch.ones(2, 3), workers=2, duration=5.0, warmup=1)


def test_load_round_trips_on_cpu(tmp_path, traced_minilm, example):
    files.save(traced_minilm, tmp_path / "m.pt", example)
    loaded = neuron.load(tmp_path / "m.pt", neuron.detect())
    with torch.no_grad():
        assert accuracy.max_abs_diff(loaded(*example), traced_minilm(*example)) == 0.0


@pytest.mark.skipif(not ON_NEURON, reason="needs an Inf1/Inf2 instance with its Neuron package (never run by CI)")
def test_on_neuron_compiles_and_matches_eager(tmp_path):
    """For workshop instructors, on the instance: compile a tiny BERT without BF16 casting, compare, save, load."""
    detection = neuron.detect()
    model = models.tiny_model("bert", task="base", torchscript=True)
    example = (torch.randint(0, 1000, (2, 16)), torch.ones(2, 16, dtype=torch.long))
    no_cast = ["--fast-math", "none"] if detection.backend == "inf1" else ["--auto-cast", "none"]
    compiled, record = neuron.trace_for_inferentia(model, example, detection=detection, compiler_args=no_cast)
    assert record.backend == detection.backend and record.applied == {"compiler_args": no_cast}
    assert tracing.verify(compiled, model, [example], accuracy.TOLERANCES[torch.bfloat16]).ok  # Neuron casts matmuls to bf16
    files.save(compiled, tmp_path / "tiny_neuron.pt", example)
    loaded = neuron.load(tmp_path / "tiny_neuron.pt", detection)
    with torch.no_grad():
        assert accuracy.max_abs_diff(loaded(*example), compiled(*example)) == 0.0
