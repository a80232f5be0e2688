"""helpers.timing: measure and compare (arithmetic on a fake clock), fallback guard, CPU paths, results.

Timing arithmetic is tested with a fake clock that each workload advances by a known cost, so the assertions
are exact and no test depends on how busy the machine is; real timings belong to benchmarks/. The MiniLM paths
check that each stays within the accuracy notebook 05 states for it.
"""

import json

import pytest
import torch

from helpers import course, timing
from helpers.timing import comparison as comparing


class FakeClock:
    """A clock that only moves when a workload says how long it took."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def costs(self, *seconds: float):
        """A workload whose calls take `seconds[0]`, then `seconds[1]`, ... (the last one repeats)."""
        durations = list(seconds)

        def work(*_inputs):
            self.now += durations.pop(0) if len(durations) > 1 else durations[0]
        return work


def test_measure_reports_median_and_percentiles_of_the_timed_calls():
    clock = FakeClock()
    result = timing.measure(clock.costs(9.0, 9.0, 1, 2, 3, 4, 5), warmup=2, repeat=5, clock=clock)
    assert result.runs == [1, 2, 3, 4, 5] and result.median == 3, "the two warm-up calls are not timed"
    assert result.p10 == pytest.approx(1.4) and result.p90 == pytest.approx(4.6)
    assert result.spread == pytest.approx((4.6 - 1.4) / 3)


def test_measure_needs_a_repeat():
    with pytest.raises(ValueError, match="repeat >= 1"):
        timing.measure(lambda: None, warmup=0, repeat=0)


def test_percentile_interpolates():
    assert timing.percentile([1, 2, 3, 4, 5], 50) == 3
    assert timing.percentile([0, 10], 10) == pytest.approx(1.0)


def test_provenance_names_machine_and_command():
    record = timing.provenance("make bench")
    assert record["command"] == "make bench" and "cores" in record["machine"]


def test_compare_orders_and_ratios_workloads_of_known_cost():
    clock = FakeClock()
    result = timing.compare({"slow": clock.costs(0.09), "fast": clock.costs(0.03), "mid": clock.costs(0.06)},
                            warmup=1, repeat=7, progress=False, clock=clock)
    assert [r.name for r in result.rows] == ["slow", "fast", "mid"] and result.baseline == "slow"
    assert result["slow"].speedup == 1.0
    assert result["fast"].speedup == pytest.approx(3.0) and result["mid"].speedup == pytest.approx(1.5)
    assert result.paired_ratio("fast") == pytest.approx(1 / 3)
    assert result.best().name == "fast" and all(len(r.timing.runs) == 7 for r in result.rows)


def test_compare_keeps_setup_and_first_call_apart_from_steady_state():
    clock = FakeClock()
    lazy = clock.costs(0.05, 0.001)  # compiles on its first call, like torch.compile
    result = timing.compare({"lazy": timing.Candidate(lazy, setup_s=1.5)}, warmup=1, repeat=5, progress=False,
                            clock=clock)
    row = result["lazy"]
    assert row.setup_s == 1.5 and row.first_call_s == pytest.approx(0.05)
    assert row.timing.median == pytest.approx(0.001)


def test_compare_reports_per_sample_speedup_for_batches():
    clock = FakeClock()
    one, eight = (torch.zeros(1, 4),), (torch.zeros(8, 4),)
    result = timing.compare({"b1": timing.Candidate(clock.costs(0.01), one),
                             "b8": timing.Candidate(clock.costs(0.02), eight)},
                            warmup=1, repeat=7, progress=False, clock=clock)
    assert result["b8"].samples == 8 and result["b8"].speedup == pytest.approx(4.0), "8 samples in 2x the time"


def test_compare_rejects_unknown_baseline():
    with pytest.raises(ValueError, match="baseline 'nope' is not a candidate"):
        timing.compare({"a": lambda: None}, baseline="nope", progress=False)


def test_records_round_trip():
    clock = FakeClock()
    result = timing.compare({"a": clock.costs(0.001), "b": clock.costs(0.002)}, warmup=0, repeat=3,
                            progress=False, clock=clock)
    again = timing.Comparison.from_records(result.records(), "a")
    assert again.table() == result.table()


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.second = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


def test_guard_passes_a_compiled_module_and_catches_silent_eager_fallback():
    torch._dynamo.reset()
    model, x = Tiny().eval(), torch.randn(2, 8)
    assert timing.python_calls(model, (x,), model) == 2, "eager runs both Linear forwards in Python"
    good = torch.compile(model, backend="eager")
    result = timing.compare({"compiled": timing.Candidate(good, (x,), watch=model)}, warmup=1, repeat=3, progress=False)
    assert result["compiled"].status == "ok"
    with torch._dynamo.config.patch(recompile_limit=1):
        models = [Tiny().eval(), Tiny().eval().double()]  # same forward code, new dtype: the limit is hit
        compiled = [torch.compile(m, backend="eager") for m in models]
        cands = {f"m{i}": timing.Candidate(c, (x.to(m.first.weight.dtype),), watch=m)
                 for i, (c, m) in enumerate(zip(compiled, models))}
        result = timing.compare(cands, warmup=1, repeat=3, progress=False)
    assert result["m0"].status == "ok"
    assert result["m1"].status.startswith("FELL BACK TO EAGER"), "the limit made m1 run eager silently"
    torch._dynamo.reset()


def test_guard_catches_recompiles_while_timed():
    torch._dynamo.reset()
    model = Tiny().eval()
    compiled = torch.compile(model, backend="eager")
    shapes = iter(range(1, 100))  # a new batch size on every call: each one recompiles
    with torch._dynamo.config.patch(automatic_dynamic_shapes=False, recompile_limit=64):
        result = timing.compare({"c": timing.Candidate(lambda: compiled(torch.randn(next(shapes), 8)), watch=model)},
                               warmup=0, repeat=3, progress=False)
    assert result["c"].status == "RECOMPILED WHILE TIMED"
    torch._dynamo.reset()


def test_encoder_flops_match_torch_flop_counter(minilm):
    model, tokenizer = minilm
    inputs = timing.sentence_inputs(tokenizer, timing.SENTENCES[:2], seq=32)
    with torch.utils.flop_counter.FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs)
    assert timing.encoder_flops(model.config, 2, 32) == pytest.approx(counter.get_total_flops(), rel=0.02)


@pytest.fixture(scope="module")
def accuracy_setup(minilm):
    """MiniLM, a 1 x 32 example and the 16 sentences at length 32; one thread, so a busy machine can't stall it."""
    model, tokenizer = minilm
    with course.threads(1):
        inputs = timing.sentence_inputs(tokenizer, timing.SENTENCES[:1], seq=32)
        checks = timing.sentence_inputs(tokenizer, timing.SENTENCES, seq=32)
        reference = comparing.run_chunks(timing.eager(model), checks)
        yield model, inputs, (checks, reference)


def lowest_cosine(candidate, model, checks) -> float:
    inputs, reference = checks
    return comparing.embedding_accuracy(candidate, reference, inputs)[0]


def test_fp32_paths_match_eager(accuracy_setup):
    model, inputs, checks = accuracy_setup
    for candidate in (timing.traced(model, inputs), timing.traced(model, inputs, freeze=True),
                      timing.traced(model, inputs, optimize=True)):
        assert lowest_cosine(candidate, model, checks) > 0.99999


def test_onnxruntime_matches_eager(accuracy_setup, tmp_path):
    model, inputs, checks = accuracy_setup
    path, _ = timing.onnx_file(model, inputs, tmp_path)
    assert lowest_cosine(timing.onnxruntime(path), model, checks) > 0.99999
    with pytest.raises(FileExistsError, match="already exists"):
        timing.onnx_file(model, inputs, tmp_path)


def test_aoti_path_is_a_checked_package_equal_to_eager(tmp_path):
    from helpers import accuracy, models, shapes

    model = models.tiny_model("bert", task="base", torchscript=True)  # compiles in a fraction of MiniLM's time
    inputs = shapes.random_ids(1000, 1, 16, seed=2)
    candidate = timing.aoti(model, inputs, tmp_path / "m.pt2")
    assert (tmp_path / "m.pt2.json").exists(), "the path's package carries a manifest"
    with torch.no_grad():
        assert accuracy.close(candidate.fn(*inputs), model(*inputs))
    with pytest.raises(ValueError, match="this package was exported for"):
        candidate.fn(*shapes.random_ids(1000, 2, 16)), "a static package refuses other shapes"


BF16, WHY = timing.bf16_support()


@pytest.mark.skipif(not BF16, reason=f"this CPU has no fast bf16: {WHY}")
def test_bf16_paths_keep_cosine_above_0_999(accuracy_setup):
    model, inputs, checks = accuracy_setup
    bf16 = timing.eager(model, torch.bfloat16)
    for candidate in (bf16, timing.traced(bf16.fn, inputs, freeze=True), timing.eager(model, autocast=True)):
        assert lowest_cosine(candidate, model, checks) > 0.999


def test_int8_dynamic_misses_the_bar_as_the_notebook_says(accuracy_setup):
    model, _, checks = accuracy_setup
    cosine = lowest_cosine(timing.int8_dynamic(model), model, checks)
    assert 0.8 < cosine < 0.999, "notebook 05 states int8 dynamic keeps cosine above 0.8 but misses 0.999"


def test_bf16_support_names_what_the_cpu_has():
    supported, why = timing.bf16_support()
    features = timing.cpu_features()
    assert supported == (features["amx"] or features["avx512_bf16"]) and why


def test_cpu_class_from_features():
    if timing.cpu_class() == "arm":
        pytest.skip("on ARM the class comes from the architecture, not x86 features")
    assert timing.cpu_class({"amx": True, "avx512_bf16": True, "avx512": True, "avx2": True}) == "amx"
    assert timing.cpu_class({"amx": False, "avx512_bf16": True, "avx512": True, "avx2": True}) == "avx512-bf16"
    assert timing.cpu_class({"amx": False, "avx512_bf16": False, "avx512": False, "avx2": True}) == "avx2"


def test_machine_slug_names_vendor_family_and_class():
    assert timing.machine_slug("Intel(R) Xeon(R) Processor", "avx512-bf16") == "intel-xeon-avx512-bf16"
    assert timing.machine_slug("AMD EPYC 9R14 96-Core Processor", "avx512-bf16") == "amd-epyc-avx512-bf16"


def test_results_are_kept_per_machine_and_never_overwritten(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_RESULTS", str(tmp_path))
    other = tmp_path / "intel-xeon-avx512-bf16"
    other.mkdir()
    (other / "bench.json").write_text(json.dumps({"provenance": {"timestamp": "20261202T000000"}}))
    first = timing.results.write("bench", {"provenance": timing.provenance("first run")})
    second = timing.results.write("bench", {"provenance": timing.provenance("second run")})
    assert first == second and first.parent.name == timing.machine_slug()
    assert len(list(first.parent.glob("bench.*.json"))) == 1, "the first run was moved aside, not overwritten"
    assert json.loads((other / "bench.json").read_text())["provenance"]["timestamp"] == "20261202T000000"
    assert set(timing.read_all("bench")) == {"intel-xeon-avx512-bf16", timing.machine_slug()}


def test_keep_previous_never_overwrites_results_that_share_a_timestamp(tmp_path):
    result, plot = tmp_path / "r.json", tmp_path / "r.png"
    for run in range(3):
        result.write_text(json.dumps({"provenance": {"timestamp": "20261202T101010"}, "run": run}))
        plot.write_bytes(b"png%d" % run)
        timing.keep_previous(result, plot)
    kept = sorted(p.name for p in tmp_path.glob("r.*.json"))
    assert kept == ["r.20261202T101010-2.json", "r.20261202T101010-3.json", "r.20261202T101010.json"]
    assert {json.loads((tmp_path / k).read_text())["run"] for k in kept} == {0, 1, 2}
