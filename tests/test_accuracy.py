"""helpers.accuracy: the one statement of tolerances, and verdicts that read the same on every CPU."""

import pytest
import torch

from helpers import accuracy


def test_float32_tolerance_scales_with_the_output():
    rule = accuracy.tolerance_for(torch.float32)
    assert rule.limit(0.0) == pytest.approx(1e-5) and rule.limit(6.0) == pytest.approx(1e-5 + 6e-4)
    assert accuracy.tolerance_for(torch.float64) == rule, "unlisted dtypes are held to float32's rule"


def test_cross_cpu_noise_passes_and_a_real_bug_fails():
    expected = torch.linspace(-6, 6, 384).reshape(1, 384)
    noise = expected + 3e-5  # the largest difference measured between kernel sets (AVX2 vs none) on MiniLM
    assert accuracy.close(noise, expected)
    assert not accuracy.close(expected + 0.02, expected), "a padding leak moves outputs by 1e-2 or more"


def test_bf16_is_held_to_its_own_rule_by_dtype():
    expected = torch.linspace(-6, 6, 384).to(torch.bfloat16)
    assert accuracy.compare(expected + 0.05, expected).ok, "a bf16 rounding step at this scale is ~0.03"
    assert not accuracy.compare(expected.float() + 0.05, expected.float()).ok


def test_compare_reports_the_tensor_closest_to_failing_and_reads_stably():
    good, bad = torch.ones(2, 3), torch.ones(4)
    found = accuracy.compare((good, bad + 0.5), (good, bad))
    assert not found.ok and found.max_abs_diff == pytest.approx(0.5)
    assert str(found) == "NO: max |diff| 0.5, allowed 1e-04"
    assert str(accuracy.compare(good, good)) == "yes (within 1e-05 + 1e-04 x scale)"


def test_structure_and_shape_mismatches_are_named():
    with pytest.raises(ValueError, match="2 tensors vs 1"):
        accuracy.compare((torch.ones(1), torch.ones(1)), torch.ones(1))
    with pytest.raises(ValueError, match=r"\(2,\) vs \(3,\)"):
        accuracy.max_abs_diff(torch.ones(2), torch.ones(3))


def test_flat_tensors_walks_tuples_dicts_and_nesting():
    a, b, c = torch.ones(1), torch.zeros(1), torch.full((1,), 2.0)
    assert accuracy.flat_tensors({"x": a, "y": (b, [c])}) == [a, b, c]
