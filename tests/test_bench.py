import time

import pytest

from helpers import bench


def test_measure_orders_workloads_of_known_cost():
    fast = bench.measure(lambda: time.sleep(0.001), warmup=1, repeat=7)
    slow = bench.measure(lambda: time.sleep(0.005), warmup=1, repeat=7)
    assert len(fast.runs) == 7 and fast.p10 <= fast.median <= fast.p90
    assert 3 < slow.median / fast.median < 7, "a 5x costlier call should measure roughly 5x slower"


def test_measure_needs_a_repeat():
    with pytest.raises(ValueError, match="repeat >= 1"):
        bench.measure(lambda: None, warmup=0, repeat=0)


def test_percentile_interpolates():
    assert bench.percentile([1, 2, 3, 4, 5], 50) == 3
    assert bench.percentile([0, 10], 10) == pytest.approx(1.0)


def test_provenance_names_machine_and_command():
    record = bench.provenance("make bench")
    assert record["command"] == "make bench" and "cores" in record["machine"]


def test_keep_previous_moves_results_aside_never_overwrites(tmp_path):
    import json

    result, plot = tmp_path / "r.json", tmp_path / "r.png"
    result.write_text(json.dumps({"provenance": bench.provenance("first run")}))
    plot.write_bytes(b"png")
    stamp = json.loads(result.read_text())["provenance"]["timestamp"]
    bench.keep_previous(result, plot)
    assert not result.exists() and not plot.exists()
    assert (tmp_path / f"r.{stamp}.json").exists() and (tmp_path / f"r.{stamp}.png").read_bytes() == b"png"
    bench.keep_previous(result, plot)  # nothing there: nothing to do
