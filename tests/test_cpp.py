"""The C++ program in cpp/: built once per session, checked against Python on .pt and .pt2, fed bad input."""

import pytest
import torch

from helpers import cpp, models, tracing


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
    tracing.save(traced_minilm, folder / "model.pt", example)
    write_inputs(folder, *example)
    return folder


@pytest.fixture(scope="session")
def tiny_pt2(tmp_path_factory):
    """(tiny BERT, its 2x8 inputs, its AOTInductor package compiled for exactly 2x8): a fast .pt2."""
    model = models.tiny_model("bert", task="base", torchscript=True)
    ids = torch.randint(1, 1000, (2, 8), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 5:] = 0  # the second sentence is padded
    inputs = (ids, mask)
    path = cpp.export_aoti(model, inputs, tmp_path_factory.mktemp("cpp_tiny") / "tiny.pt2")
    return model, inputs, path


def write_inputs(folder, ids, mask, name="inputs.txt"):
    return cpp.write_inputs(folder / name, {"input_ids": ids, "attention_mask": mask})


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
    assert tracing.max_abs_diff(traced_out, run.outputs) < 1e-5
    assert tracing.max_abs_diff(eager_out, run.outputs) < 1e-4


def test_pt2_from_cpp_matches_python(binary, tiny_pt2, tmp_path):
    model, inputs, path = tiny_pt2
    run = cpp.run(path, write_inputs(tmp_path, *inputs), tmp_path / "out.txt", binary=binary)
    with torch.no_grad():
        packaged_out, eager_out = torch._inductor.aoti_load_package(str(path))(*inputs), model(*inputs)
    assert [tuple(t.shape) for t in run.outputs] == [(2, 8, 32), (2, 32)]
    assert tracing.max_abs_diff(packaged_out, run.outputs) < 1e-6
    assert tracing.max_abs_diff(eager_out, run.outputs) < 1e-5


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


def test_wrong_shape_for_a_pt2_is_refused(binary, tiny_pt2, tmp_path):
    inputs = write_inputs(tmp_path, IDS[:1], MASK[:1])  # 1x8; the package was compiled for 2x8
    with pytest.raises(cpp.CppError, match="expected: 2, but got: 1(.|\n)*accepts only the shapes it was exported for"):
        cpp.run(tiny_pt2[2], inputs, tmp_path / "out.txt", binary=binary)


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
