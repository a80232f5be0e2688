import pytest
import torch

from helpers import tracing


def test_trace_equals_eager_at_other_shapes(minilm, traced_minilm, example):
    model, tokenizer = minilm
    longer = tokenizer(["a sentence that is much longer than any of the three examples we traced with"], return_tensors="pt")
    assert longer["input_ids"].shape[1] > example[0].shape[1]
    report = tracing.verify(traced_minilm, model, [example, (longer["input_ids"], longer["attention_mask"])])
    assert report.ok and [row.label for row in report.rows] == ["3x14", f"1x{longer['input_ids'].shape[1]}"]
    assert report.verified == [[(3, 14), (3, 14)], [tuple(longer["input_ids"].shape)] * 2]
    assert str(report).splitlines()[1:] == ["3x14       yes", f"1x{longer['input_ids'].shape[1]:<8} yes"]


def test_verify_reports_a_shape_the_trace_cannot_serve(size_baked):
    traced = tracing.trace(size_baked, torch.ones(1, 7, dtype=torch.long))
    with pytest.raises(tracing.TraceMismatchError, match=r"1x3 .*NO: RuntimeError: .*size of tensor a \(3\) must match the size of tensor b \(7\)"):
        tracing.verify(traced, size_baked, [torch.ones(1, 7, dtype=torch.long), torch.ones(1, 3, dtype=torch.long)])
    report = tracing.verify(traced, size_baked, [torch.ones(1, 3, dtype=torch.long)], raise_on_mismatch=False)
    assert not report.ok and report.rows[0].max_abs_diff is None


def test_verify_reports_wrong_numbers():
    class Doubler(torch.nn.Module):
        def forward(self, x):
            return x * 2

    with pytest.raises(tracing.TraceMismatchError, match=r"2x2 +NO: max \|diff\| 1, allowed 2e-04"):
        tracing.verify(lambda x: x * 3, Doubler(), [torch.ones(2, 2)])


def test_tracer_warnings_hidden_only_when_asked(size_baked):
    import warnings

    example = torch.ones(1, 7, dtype=torch.long)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracing.trace(size_baked, example)
        shown = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
        caught.clear()
        tracing.trace(size_baked, example, tracer_warnings=False)
        hidden = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    assert shown and not hidden


def test_shape_label_takes_tensors_and_shapes():
    assert tracing.shape_label(torch.ones(2, 16)) == tracing.shape_label((2, 16)) == "2x16"


def test_dict_inputs_get_a_clear_error(minilm, example):
    model, _ = minilm
    with pytest.raises(TypeError, match="in the order of model.forward"):
        tracing.trace(model, {"input_ids": example[0]})
