import json
import warnings

import pytest
import torch

from helpers import quiet, serve, tracing


def test_trace_equals_eager_at_other_shapes(minilm, traced_minilm, example):
    model, tokenizer = minilm
    longer = tokenizer(["a sentence that is much longer than any of the three examples we traced with"], return_tensors="pt")
    assert longer["input_ids"].shape[1] > example[0].shape[1]
    report = tracing.verify(traced_minilm, model, [example, (longer["input_ids"], longer["attention_mask"])])
    assert report.ok and [row.shape for row in report.rows] == ["3x14", f"1x{longer['input_ids'].shape[1]}"]
    assert all(row.max_abs_diff <= 1e-5 for row in report.rows)


def test_verify_reports_a_shape_the_trace_cannot_serve(size_baked):
    traced = tracing.trace(size_baked, torch.ones(1, 7, dtype=torch.long))
    with pytest.raises(tracing.TraceMismatchError, match=r"1x3 .*NO .*size of tensor a \(3\) must match the size of tensor b \(7\)"):
        tracing.verify(traced, size_baked, [torch.ones(1, 7, dtype=torch.long), torch.ones(1, 3, dtype=torch.long)])
    report = tracing.verify(traced, size_baked, [torch.ones(1, 3, dtype=torch.long)], raise_on_mismatch=False)
    assert not report.ok and report.rows[0].max_abs_diff is None


def test_verify_reports_wrong_numbers():
    class Doubler(torch.nn.Module):
        def forward(self, x):
            return x * 2

    with pytest.raises(tracing.TraceMismatchError, match="outputs differ"):
        tracing.verify(lambda x: x * 3, Doubler(), [torch.ones(2, 2)])


def test_dict_inputs_get_a_clear_error(minilm, example):
    model, _ = minilm
    with pytest.raises(TypeError, match="in the order of model.forward"):
        tracing.trace(model, {"input_ids": example[0]})


def test_known_noise_hides_only_explained_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet.known_noise():
            warnings.warn("`torch.jit.trace` is deprecated. Please switch to torch.export.", DeprecationWarning)
            warnings.warn("something new", UserWarning)
    assert [str(w.message) for w in caught] == ["something new"]


def test_save_writes_manifest_and_load_round_trips(tmp_path, traced_minilm, minilm, example):
    model, _ = minilm
    manifest = tracing.save(traced_minilm, tmp_path / "m.pt", example)
    on_disk = json.loads((tmp_path / "m.pt.json").read_text())
    assert on_disk == manifest
    assert manifest["sha256"] == tracing.sha256(tmp_path / "m.pt")
    assert manifest["inputs"] == [
        {"name": "input_ids", "shape": [3, 14], "dtype": "int64"},
        {"name": "attention_mask", "shape": [3, 14], "dtype": "int64"},
    ]
    assert manifest["versions"]["torch"] == torch.__version__
    loaded = tracing.load(tmp_path / "m.pt")
    assert not loaded.training
    with torch.no_grad():
        assert tracing.max_abs_diff(loaded(*example), model(*example)) == 0.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.pt.json"], "no temporary files left behind"


def test_save_refuses_to_overwrite(tmp_path, traced_minilm, example):
    target = tmp_path / "m.pt"
    target.write_bytes(b"a user's precious file")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tracing.save(traced_minilm, target, example)
    assert target.read_bytes() == b"a user's precious file"
    tracing.save(traced_minilm, target, example, overwrite=True)
    assert tracing.load(target) is not None


def test_load_refuses_missing_truncated_tampered_and_unmanifested(tmp_path, traced_minilm, example):
    with pytest.raises(FileNotFoundError, match="tracing.save"):
        tracing.load(tmp_path / "nothing.pt")
    path = tmp_path / "m.pt"
    tracing.save(traced_minilm, path, example)
    data = path.read_bytes()

    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(tracing.ModelFileError, match="truncated"):
        tracing.load(path)

    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(tampered))
    with pytest.raises(tracing.ModelFileError, match="changed after it was saved"):
        tracing.load(path)

    path.write_bytes(data)
    (tmp_path / "m.pt.json").unlink()
    with pytest.raises(tracing.ModelFileError, match="m.pt.json is missing"):
        tracing.load(path)


def test_loaded_file_matches_in_a_process_without_transformers(tmp_path, traced_minilm, minilm, example, capsys):
    model, _ = minilm
    tracing.save(traced_minilm, tmp_path / "m.pt", example)
    outputs = serve.run_in_fresh_process(tmp_path / "m.pt", example)
    assert "transformers imported: False" in capsys.readouterr().out
    with torch.no_grad():
        assert tracing.max_abs_diff(outputs, model(*example)) == 0.0


def test_fresh_process_failure_is_reported(tmp_path, example):
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="the fresh process failed"):
        serve.run_in_fresh_process(tmp_path / "bad.pt", example)


def test_show_once_prints_each_distinct_warning_once(capsys):
    with quiet.show_once() as seen:
        for _ in range(3):
            warnings.warn("`torch.jit.trace` is deprecated.", DeprecationWarning)
        warnings.warn("a tracer note", torch.jit.TracerWarning)
    assert capsys.readouterr().out.splitlines() == [
        "DeprecationWarning: `torch.jit.trace` is deprecated.",
        "TracerWarning: a tracer note",
    ]
    assert len(seen) == 2
