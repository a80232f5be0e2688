"""The C++ program in cpp/: built once per session, checked against Python on .pt and .pt2, fed bad input.

The .pt2 packages come from helpers.export (two compiles of a tiny BERT, ~10-20 s each on 2 cores): one with a
dynamic batch and sequence length, one static.
"""

import json
import os
import re
import subprocess
import zipfile

import pytest
import torch

from helpers import accuracy, cpp, export, files, models, shapes


@pytest.fixture(scope="session")
def binary():
    """cpp/build/run_model, built (or found up to date) once per test session."""
    reason = cpp.missing_tools()
    if reason:
        pytest.skip(f"cannot build the C++ program here: {reason}")
    return cpp.build()


@pytest.fixture(scope="session")
def minilm_files(tmp_path_factory, traced_minilm, example):
    """A folder holding the traced MiniLM (model.pt) and its inputs (inputs.txt, 3 sentences)."""
    folder = tmp_path_factory.mktemp("cpp_minilm")
    files.save(traced_minilm, folder / "model.pt", example)
    write_inputs(folder, *example)
    return folder


def token_inputs(batch, seq):
    """Seeded token ids [batch, seq] for the tiny BERT (vocabulary 1000) and a mask whose last row is padded."""
    return shapes.random_ids(1000, batch, seq, seed=batch * 1000 + seq, low=1, pad_last=True)


@pytest.fixture(scope="session")
def tiny_bert():
    return models.tiny_model("bert", task="base", torchscript=True)


@pytest.fixture(scope="session")
def tiny_pt2(tmp_path_factory, tiny_bert):
    """(tiny BERT, its 2x8 example inputs, its package for batch 1..64 and seq 2..128): export.package's .pt2."""
    inputs = token_inputs(2, 8)
    path = tmp_path_factory.mktemp("cpp_tiny") / "tiny.pt2"
    export.package(export.export_program(tiny_bert, inputs), path)
    return tiny_bert, inputs, path


@pytest.fixture(scope="session")
def static_pt2(tmp_path_factory, tiny_bert):
    """The tiny BERT's package for exactly 2x8 (export_program(..., dynamic=False))."""
    path = tmp_path_factory.mktemp("cpp_static") / "static.pt2"
    export.package(export.export_program(tiny_bert, token_inputs(2, 8), dynamic=False), path)
    return path


def write_inputs(folder, ids, mask, name="inputs.txt"):
    return cpp.write_inputs(folder / name, {"input_ids": ids, "attention_mask": mask})


def run_binary(binary, model_path, inputs_path, outputs_path, env=None):
    """The program's exit code and stderr, called directly: 2 with a message, not an abort (-6), for a bad shape."""
    done = subprocess.run([binary, model_path, inputs_path, outputs_path], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    return done.returncode, done.stderr.strip()


def with_metadata(package, path, changes):
    """A copy of `package` whose metadata has `changes` applied (None removes a key): the .pt2 another tool
    (plain torch._inductor.aoti_compile_and_package) or a damaged build would give, with the same compiled code."""
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(path, "w") as copy:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("_metadata.json"):
                metadata = {**json.loads(data), **changes}
                data = json.dumps({k: v for k, v in metadata.items() if v is not None}).encode()
            copy.writestr(info, data)
    return path


def test_tensor_text_round_trips_exactly(tmp_path):
    tensors = {"x": torch.randn(3, 4, 5) * 1e3, "ids": torch.arange(6).reshape(2, 3)}
    tensors |= {"vector": torch.randn(7), "scalar": torch.tensor(2.5)}
    back = cpp.read_tensors(cpp.write_tensors(tmp_path / "t.txt", tensors))
    assert list(back) == list(tensors)
    assert all(torch.equal(back[name], t) and back[name].dtype == t.dtype for name, t in tensors.items())


def test_write_tensors_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(TypeError, match=r"\.long\(\) or \.float\(\)"):
        cpp.write_tensors(tmp_path / "t.txt", {"x": torch.zeros(2, dtype=torch.float16)})
    with pytest.raises(ValueError, match="every dimension >= 1"):
        cpp.write_tensors(tmp_path / "t.txt", {"x": torch.zeros(2, 0)})


def test_write_inputs_takes_a_tokenizer_output(minilm, tmp_path):
    encoding = minilm[1](["Two sentences here.", "And one more."], padding=True, return_tensors="pt")
    back = cpp.read_tensors(cpp.write_inputs(tmp_path / "in.txt", encoding))
    assert list(back) == ["input_ids", "attention_mask"] and torch.equal(back["input_ids"], encoding["input_ids"])
    with pytest.raises(KeyError, match="no attention_mask"):
        cpp.write_inputs(tmp_path / "other.txt", {"input_ids": encoding["input_ids"]})


def test_write_tensors_refuses_to_overwrite(tmp_path):
    path = cpp.write_tensors(tmp_path / "t.txt", {"x": torch.zeros(2)})
    with pytest.raises(FileExistsError, match="overwrite=True"):
        cpp.write_tensors(path, {"x": torch.ones(2)})
    assert cpp.read_tensors(path)["x"].sum() == 0


def test_missing_tools_names_what_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CXX", raising=False)
    assert "cmake is not installed" in cpp.missing_tools()
    with pytest.raises(cpp.BuildError, match="cmake is not installed"):
        cpp.build()


def test_pt_from_cpp_matches_python(binary, minilm_files, minilm, traced_minilm, example, tmp_path):
    run = cpp.run(minilm_files / "model.pt", minilm_files / "inputs.txt", tmp_path / "out.txt", binary=binary)
    with torch.no_grad():
        traced_out, eager_out = traced_minilm(*example), minilm[0](*example)
    assert [tuple(t.shape) for t in run.outputs] == [(3, example[0].shape[1], 384), (3, 384)]
    assert accuracy.close(run.outputs, traced_out) and accuracy.close(run.outputs, eager_out)


@pytest.mark.parametrize("batch, seq", [(2, 8), (1, 8), (1, 2), (3, 11), (64, 128)])
def test_pt2_from_cpp_matches_python_at_every_shape_it_serves(binary, tiny_pt2, tmp_path, batch, seq):
    """Batch 1 included: AOTInductor's own check, which run_model turns on, refuses it unless the package was
    compiled with aot_inductor.check_lowerbound off, as export.package does."""
    model, _, path = tiny_pt2
    inputs = token_inputs(batch, seq)
    run = cpp.run(path, write_inputs(tmp_path, *inputs), tmp_path / "out.txt", binary=binary)
    with torch.no_grad():
        packaged_out, eager_out = export.load_package(path)(*inputs), model(*inputs)
    assert [tuple(t.shape) for t in run.outputs] == [(batch, seq, 32), (batch, 32)]
    assert "serves: input_ids [batch, seq], attention_mask [batch, seq]; batch 1..64, seq 2..128" in run.log
    assert accuracy.close(run.outputs, packaged_out) and accuracy.close(run.outputs, eager_out)


def test_timing_loop_times_every_repeat(binary, tiny_pt2, tmp_path):
    _, inputs, path = tiny_pt2
    inputs_file = write_inputs(tmp_path, *inputs)
    run = cpp.run(path, inputs_file, tmp_path / "out.txt", warmup=2, repeat=5, threads=1, binary=binary)
    assert len(run.timing.runs) == 5 and min(run.timing.runs) > 0 and run.timing.threads == 1
    assert "2 warm-up, 5 timed" in run.log and "threads 1" in run.log


IDS, MASK = torch.arange(100, 116).reshape(2, 8), torch.ones(2, 8, dtype=torch.long)
BAD_INPUTS = {
    "not tensor-text": ('{"input_ids": [[101, 102]]}', "not a tensor-text file"),
    "short row": ("# tensor-text v1\ninput_ids int64 1 8\n1 2 3 4 5 6 7\n", "has 7 values, expected 8"),
    "truncated": ("# tensor-text v1\ninput_ids int64 2 3\n1 2 3\n", "ends after 1 of 2 rows"),
    "not a number": ("# tensor-text v1\ninput_ids int64 1 2\n101 1.5\n", "'1.5' in input_ids is not a whole number"),
    "1-D ids": ("# tensor-text v1\ninput_ids int64 3\n1 2 3\nattention_mask int64 3\n1 1 1\n", r"expected 2-D \[batch"),
    "mask shape": ("# tensor-text v1\ninput_ids int64 1 3\n1 2 3\nattention_mask int64 1 2\n1 1\n", "must match"),
    "no mask": ("# tensor-text v1\ninput_ids int64 1 3\n1 2 3\n", "no tensor named attention_mask"),
    "mask values": ("# tensor-text v1\ninput_ids int64 1 2\n1 2\nattention_mask int64 1 2\n1 2\n", "only 0"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_file_gets_a_clear_message(binary, tiny_pt2, tmp_path, case):
    text, message = BAD_INPUTS[case]
    (tmp_path / "bad.txt").write_text(text)
    with pytest.raises(cpp.CppError, match=message):
        cpp.run(tiny_pt2[2], tmp_path / "bad.txt", tmp_path / "out.txt", binary=binary)
    assert not (tmp_path / "out.txt").exists()


OUTSIDE = {  # (batch, seq) -> the message; seq 1 passes AOTInductor's own check, which skips lower bounds
    (1, 1): r"input_ids has seq 1; this package serves seq 2\.\.128 - truncate or pad to 2\.\.128 tokens "
            r"\(tokenizer\(\.\.\., truncation=True, max_length=128\)\), or export with another max_seq",
    (2, 129): r"input_ids has seq 129; this package serves seq 2\.\.128 - truncate",
    (65, 4): r"input_ids has batch 65; this package serves batch 1\.\.64 - split the batch into chunks of at most "
             r"64, or export with a larger max_batch",
}


@pytest.mark.parametrize("batch, seq", list(OUTSIDE))
def test_shape_outside_a_packages_range_names_range_and_fix(binary, tiny_pt2, tmp_path, batch, seq):
    code, stderr = run_binary(binary, tiny_pt2[2], write_inputs(tmp_path, *token_inputs(batch, seq)), tmp_path / "o")
    assert code == 2 and stderr.startswith("error: ") and len(stderr.splitlines()) == 1, stderr
    assert re.fullmatch(f"error: {OUTSIDE[batch, seq]}.*", stderr)
    assert not (tmp_path / "o").exists()


def test_static_package_names_its_one_shape(binary, static_pt2, tiny_bert, tmp_path):
    ids, mask = token_inputs(2, 8)
    run = cpp.run(static_pt2, write_inputs(tmp_path, ids, mask), tmp_path / "out.txt", binary=binary)
    with torch.no_grad():
        assert accuracy.close(run.outputs, tiny_bert(ids, mask))
    assert "serves: input_ids [2, 8], attention_mask [2, 8]; static shapes" in run.log
    with pytest.raises(cpp.CppError, match=r"input_ids has shape 1x8; this package was exported for \[2, 8\] only "
                                           r"- pad or batch the inputs to that shape, or export with dynamic=True"):
        cpp.run(static_pt2, write_inputs(tmp_path, ids[:1], mask[:1], "one.txt"), tmp_path / "o.txt", binary=binary)


def test_package_without_course_metadata_falls_back_to_its_own_check(binary, static_pt2, tmp_path):
    plain = with_metadata(static_pt2, tmp_path / "plain.pt2", {"course.inputs": None, "course.dims": None})
    one = write_inputs(tmp_path, *token_inputs(1, 8))
    with pytest.raises(cpp.CppError, match="expected: 2, but got: 1(.|\n)*accepts only the shapes it was exported for"):
        cpp.run(plain, one, tmp_path / "out.txt", binary=binary)
    run = cpp.run(plain, write_inputs(tmp_path, *token_inputs(2, 8), "two.txt"), tmp_path / "out.txt", binary=binary)
    assert "serves: unknown: no course.inputs metadata" in run.log and len(run.outputs) == 2


def test_without_any_check_a_larger_batch_runs_silently(binary, static_pt2, tmp_path):
    """Why run_model checks (notebook 08 says so): with AOTInductor's own check off and no course metadata, a 3x8
    input to the 2x8 package exits 0 with outputs for 2 sentences."""
    plain = with_metadata(static_pt2, tmp_path / "plain.pt2", {"course.inputs": None, "course.dims": None})
    inputs = write_inputs(tmp_path, *token_inputs(3, 8))
    code, stderr = run_binary(binary, plain, inputs, tmp_path / "out.txt", env={"AOTI_RUNTIME_CHECK_INPUTS": "0"})
    assert code == 0, stderr
    assert [t.shape[0] for t in cpp.read_tensors(tmp_path / "out.txt").values()] == [2, 2]


def test_malformed_course_metadata_is_named(binary, tiny_pt2, tmp_path):
    broken = with_metadata(tiny_pt2[2], tmp_path / "broken.pt2", {"course.dims": "batch=1-64;seq=2..128"})
    with pytest.raises(cpp.CppError, match="cannot load .*broken.pt2 as AOTInductor package: its course.dims "
                                           "metadata has 'batch=1-64'.*rebuild the package"):
        cpp.run(broken, write_inputs(tmp_path, *token_inputs(2, 8)), tmp_path / "out.txt", binary=binary)


def test_missing_or_broken_files_are_named(binary, tiny_pt2, tmp_path):
    inputs = write_inputs(tmp_path, IDS, MASK)
    with pytest.raises(cpp.CppError, match="model file .*nope.pt does not exist"):
        cpp.run(tmp_path / "nope.pt", inputs, tmp_path / "out.txt", binary=binary)
    with pytest.raises(cpp.CppError, match="input file .*nope.txt does not exist"):
        cpp.run(tiny_pt2[2], tmp_path / "nope.txt", tmp_path / "out.txt", binary=binary)
    (tmp_path / "junk.pt").write_bytes(b"not a zip archive")
    with pytest.raises(cpp.CppError, match="cannot load .*junk.pt as TorchScript"):
        cpp.run(tmp_path / "junk.pt", inputs, tmp_path / "out.txt", binary=binary)


def test_outputs_are_never_silently_overwritten(binary, tiny_pt2, tmp_path):
    _, inputs, path = tiny_pt2
    kept = cpp.write_tensors(tmp_path / "mine.txt", {"x": torch.zeros(1)})
    with pytest.raises(cpp.CppError, match="already exists.*--overwrite"):
        cpp.run(path, write_inputs(tmp_path, *inputs), kept, binary=binary)
    assert list(cpp.read_tensors(kept)) == ["x"]
    assert len(cpp.run(path, tmp_path / "inputs.txt", kept, overwrite=True, binary=binary).outputs) == 2


def test_run_says_how_to_build_a_missing_binary(tmp_path):
    with pytest.raises(FileNotFoundError, match="make cpp"):
        cpp.run("m.pt", "in.txt", tmp_path / "out.txt", binary=tmp_path / "run_model")
