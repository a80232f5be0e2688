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
