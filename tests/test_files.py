"""helpers.files: manifests, checked save and load, shape checks on loaded traces, fresh-process runs."""

import json

import pytest
import torch

from helpers import accuracy, files, tracing


def test_save_writes_manifest_and_load_round_trips(tmp_path, traced_minilm, minilm, example):
    model, _ = minilm
    manifest = files.save(traced_minilm, tmp_path / "m.pt", example)
    on_disk = json.loads((tmp_path / "m.pt.json").read_text())
    assert on_disk == manifest
    assert manifest["sha256"] == files.sha256(tmp_path / "m.pt")
    assert manifest["inputs"] == [
        {"name": "input_ids", "shape": [3, 14], "dtype": "int64"},
        {"name": "attention_mask", "shape": [3, 14], "dtype": "int64"},
    ]
    assert manifest["versions"]["torch"] == torch.__version__
    assert manifest["serves"] == [[[3, 14], [3, 14]]]
    loaded = files.load(tmp_path / "m.pt")
    assert not loaded.training
    with torch.no_grad():
        assert accuracy.max_abs_diff(loaded(*example), model(*example)) == 0.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.pt.json"], "no temporary files left behind"


def test_save_refuses_to_overwrite(tmp_path, traced_minilm, example):
    target = tmp_path / "m.pt"
    target.write_bytes(b"a user's precious file")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        files.save(traced_minilm, target, example)
    assert target.read_bytes() == b"a user's precious file"
    files.save(traced_minilm, target, example, overwrite=True)
    assert files.load(target) is not None


def test_load_refuses_missing_truncated_tampered_and_unmanifested(tmp_path, traced_minilm, example):
    with pytest.raises(FileNotFoundError, match="files.save"):
        files.load(tmp_path / "nothing.pt")
    path = tmp_path / "m.pt"
    files.save(traced_minilm, path, example)
    data = path.read_bytes()

    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(files.ModelFileError, match="truncated"):
        files.load(path)

    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(tampered))
    with pytest.raises(files.ModelFileError, match="changed after it was saved"):
        files.load(path)

    path.write_bytes(data)
    (tmp_path / "m.pt.json").unlink()
    with pytest.raises(files.ModelFileError, match="m.pt.json is missing"):
        files.load(path)


def test_loaded_file_matches_in_a_process_without_transformers(tmp_path, traced_minilm, minilm, example, capsys):
    model, _ = minilm
    files.save(traced_minilm, tmp_path / "m.pt", example)
    outputs = files.run_in_fresh_process(tmp_path / "m.pt", example)
    assert "transformers imported: False" in capsys.readouterr().out
    with torch.no_grad():
        assert accuracy.max_abs_diff(outputs, model(*example)) == 0.0


def test_fresh_process_failure_is_reported(tmp_path, example):
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="the fresh process failed: .*bad.pt.json is missing"):
        files.run_in_fresh_process(tmp_path / "bad.pt", example)


def test_a_loaded_trace_refuses_shapes_it_was_not_checked_at(tmp_path, traced_minilm, minilm, example):
    model, tokenizer = minilm
    other = tokenizer(["one more sentence"], return_tensors="pt")
    other = (other["input_ids"], other["attention_mask"])
    files.save(traced_minilm, tmp_path / "m.pt", example)
    loaded = files.load(tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"traced and checked at 3x14 & 3x14, not 1x5 & 1x5: pad to one of"):
        loaded(*other)
    with pytest.warns(UserWarning, match="traced and checked at"):
        files.load(tmp_path / "m.pt", shapes="warn")(*other)
    report = tracing.verify(traced_minilm, model, [example, other])
    files.save(traced_minilm, tmp_path / "v.pt", example, verified=report)
    assert files.load(tmp_path / "v.pt")(*other) is not None, "a verified shape is served"
    with pytest.raises(ValueError, match="shapes='loose'"):
        files.load(tmp_path / "v.pt", shapes="loose")


def test_a_manifest_missing_a_key_is_named(tmp_path, traced_minilm, example):
    path = tmp_path / "m.pt"
    files.save(traced_minilm, path, example)
    manifest = json.loads(files.manifest_path(path).read_text())
    del manifest["sha256"]
    files.manifest_path(path).write_text(json.dumps(manifest))
    with pytest.raises(files.ModelFileError, match="m.pt.json has no sha256"):
        files.load(path)
    files.manifest_path(path).write_text("{not json")
    with pytest.raises(files.ModelFileError, match="not valid JSON"):
        files.load(path)


def test_refuse_overwrite_names_every_existing_file(tmp_path):
    (tmp_path / "a").write_text("x")
    (tmp_path / "b").write_text("y")
    with pytest.raises(FileExistsError, match=r"^a and b already exist in .*pass overwrite=True"):
        files.refuse_overwrite(tmp_path / "a", tmp_path / "b", tmp_path / "c")
    files.refuse_overwrite(tmp_path / "a", overwrite=True)


def test_the_fresh_process_checks_the_manifest_before_loading(tmp_path, traced_minilm, example):
    path = tmp_path / "m.pt"
    files.save(traced_minilm, path, example)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="the fresh process failed: .*ModelFileError: m.pt changed after"):
        files.run_in_fresh_process(path, example)
