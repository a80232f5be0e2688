"""The C++ program in cpp/: built once per session, checked against Python on .pt and .pt2, fed bad input.

The .pt2 packages come from helpers.export (two compiles of a tiny BERT, ~10-20 s each on 2 cores): one with a
dynamic batch and sequence length, one static. Tests of the manifest check and of the error paths use the tiny
BERT's traced .pt (a few hundred KB) or copies of the packages, never a new compile.
The shared fixtures (binary, tiny_bert, tiny_pt2, tiny_pt, token_inputs) are in conftest.py: the exercises of
notebook 08 use them too.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import token_inputs
from helpers import accuracy, cpp, export, files


@pytest.fixture(scope="session")
def minilm_files(tmp_path_factory, traced_minilm, example):
    """A folder holding the traced MiniLM (model.pt) and its inputs (inputs.txt, 3 sentences)."""
    folder = tmp_path_factory.mktemp("cpp_minilm")
    files.save(traced_minilm, folder / "model.pt", example)
    write_inputs(folder, *example)
    return folder


@pytest.fixture(scope="session")
def static_pt2(tmp_path_factory, tiny_bert):
    """The tiny BERT's package for exactly 2x8 (export_program(..., dynamic=False))."""
    path = tmp_path_factory.mktemp("cpp_static") / "static.pt2"
    export.package(export.export_program(tiny_bert, token_inputs(2, 8), dynamic=False), path)
    return path


def write_inputs(folder, ids, mask, name="inputs.txt"):
    return cpp.write_inputs(folder / name, {"input_ids": ids, "attention_mask": mask})


def run_binary(binary, model_path, inputs_path, outputs_path, *options, env=None):
    """The program's exit code and stderr, called directly: 2 with a message, not an abort (-6), for a bad shape."""
    done = subprocess.run([binary, model_path, inputs_path, outputs_path, *options], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    return done.returncode, done.stderr.strip()


def copy_model(path, folder, name=None):
    """A copy of a model file and its manifest in `folder`, as `name` (default: the same name)."""
    target = Path(folder) / (name or Path(path).name)
    shutil.copy(path, target)
    shutil.copy(files.manifest_path(path), files.manifest_path(target))
    return target


def signed(path, write, like):
    """`write(tmp)` a model file at `path` with a manifest that vouches for it: `like`'s manifest with the new
    file's size and sha256, written by files.write_checked (what a rebuild with other contents gives)."""
    kind = files.AOTI if str(path).endswith(".pt2") else files.TORCHSCRIPT
    base = ("format", "file", "bytes", "sha256", "versions")
    details = {k: v for k, v in json.loads(files.manifest_path(like).read_text()).items() if k not in base}
    files.write_checked(path, lambda tmp: write(tmp) and None, kind, details)  # write_bytes' count is no manifest
    return Path(path)


def with_metadata(package, path, changes):
    """A signed copy of `package` whose metadata has `changes` applied (None removes a key): the .pt2 another tool
    (plain torch._inductor.aoti_compile_and_package) or a damaged build would give, with the same compiled code."""
    def write(tmp):
        with zipfile.ZipFile(package) as source, zipfile.ZipFile(tmp, "w") as copy:
            for info in source.infolist():
                data = source.read(info)
                if info.filename.endswith("_metadata.json"):
                    metadata = {**json.loads(data), **changes}
                    data = json.dumps({k: v for k, v in metadata.items() if v is not None}).encode()
                copy.writestr(info, data)
    return signed(path, write, package)


def leftovers(folder, *expected):
    """Files in `folder` other than `expected` names: a temporary run_model left behind, or an output it wrote."""
    return sorted(set(os.listdir(folder)) - set(expected))


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


@pytest.mark.parametrize("batch, seq", [(2, 8), (1, 8), (1, 2), (3, 11), (8, 64)])
def test_pt2_from_cpp_matches_python_at_every_shape_it_serves(binary, tiny_pt2, tmp_path, batch, seq):
    """Batch 1 included: AOTInductor's own check, which run_model turns on, refuses it unless the package was
    compiled with aot_inductor.check_lowerbound off, as export.package does."""
    model, _, path = tiny_pt2
    inputs = token_inputs(batch, seq)
    run = cpp.run(path, write_inputs(tmp_path, *inputs), tmp_path / "out.txt", binary=binary)
    with torch.no_grad():
        packaged_out, eager_out = export.load_package(path)(*inputs), model(*inputs)
    assert [tuple(t.shape) for t in run.outputs] == [(batch, seq, 32), (batch, 32)]
    assert "serves: input_ids [batch, seq], attention_mask [batch, seq]; batch 1..8, seq 2..64" in run.log
    assert accuracy.close(run.outputs, packaged_out) and accuracy.close(run.outputs, eager_out)


def test_timing_loop_times_every_repeat(binary, tiny_pt2, tmp_path):
    _, inputs, path = tiny_pt2
    inputs_file = write_inputs(tmp_path, *inputs)
    run = cpp.run(path, inputs_file, tmp_path / "out.txt", warmup=2, repeat=5, threads=1, binary=binary)
    assert len(run.timing.runs) == 5 and min(run.timing.runs) > 0 and run.timing.threads == 1
    assert "runs:" not in run.log and "run_seconds" not in run.log  # the timings are in run.timing, not the log
    done = subprocess.run([binary, path, inputs_file, tmp_path / "o.txt", "--warmup", "2", "--repeat", "5",
                           "--threads", "1"], capture_output=True, text=True)
    assert "runs: 2 warm-up, 5 timed, threads 1, median " in done.stdout


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
    (1, 1): r"input_ids has seq 1; this package serves seq 2\.\.64 - truncate or pad to 2\.\.64 tokens "
            r"\(tokenizer\(\.\.\., truncation=True, max_length=64\)\), or export with another max_seq",
    (2, 65): r"input_ids has seq 65; this package serves seq 2\.\.64 - truncate",
    (9, 4): r"input_ids has batch 9; this package serves batch 1\.\.8 - split the batch into chunks of at most "
            r"8, or export with a larger max_batch",
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
    broken = with_metadata(tiny_pt2[2], tmp_path / "broken.pt2", {"course.dims": "batch=1-8;seq=2..64"})
    with pytest.raises(cpp.CppError, match="cannot load .*broken.pt2 as AOTInductor package: its course.dims "
                                           "metadata has 'batch=1-8'.*rebuild the package"):
        cpp.run(broken, write_inputs(tmp_path, *token_inputs(2, 8)), tmp_path / "out.txt", binary=binary)


def test_missing_or_broken_files_are_named(binary, tiny_pt, tmp_path):
    inputs = write_inputs(tmp_path, IDS, MASK)
    with pytest.raises(cpp.CppError, match="model file .*nope.pt does not exist: make it with files.save") as err:
        cpp.run(tmp_path / "nope.pt", inputs, tmp_path / "out.txt", binary=binary)
    assert err.value.code == 3
    with pytest.raises(cpp.CppError, match="input file .*nope.txt does not exist") as err:
        cpp.run(tiny_pt, tmp_path / "nope.txt", tmp_path / "out.txt", binary=binary)
    assert err.value.code == 2
    junk = signed(tmp_path / "junk.pt", lambda tmp: tmp.write_bytes(b"not a zip archive"), like=tiny_pt)
    with pytest.raises(cpp.CppError, match="cannot load .*junk.pt as TorchScript") as err:
        cpp.run(junk, inputs, tmp_path / "out.txt", binary=binary)
    assert err.value.code == 1
    assert leftovers(tmp_path, "inputs.txt", "junk.pt", "junk.pt.json") == []


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


def tamper(path):
    """Flip one byte in the middle of the file: same size, another sha256."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def edit_manifest(path, change):
    manifest = json.loads(files.manifest_path(path).read_text())
    change(manifest)
    files.manifest_path(path).write_text(json.dumps(manifest))


MODEL_FILE_CASES = {  # how the copy is damaged -> what run_model says (exit code 3), as files.load says it
    "tampered": (tamper, r"tiny.pt changed after it was saved \(sha256 differs from tiny.pt.json\)\. Loading a "
                         r"TorchScript file runs the code inside it: re-save it yourself"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:-100]),
                  r"tiny.pt is \d+ bytes but was saved as \d+: the file is truncated or was replaced\. Copy it again "
                  r"or re-save it"),
    "no manifest": (lambda p: files.manifest_path(p).unlink(),
                    r"tiny.pt.json is missing, so tiny.pt cannot be checked\. Re-save it with files.save\(traced, "
                    r"path, example_inputs\)"),
    "incomplete manifest": (lambda p: edit_manifest(p, lambda m: m.pop("serves")),
                            r"tiny.pt.json has no serves: it was not written by files.save.* re-save the file"),
    "not JSON": (lambda p: files.manifest_path(p).write_text('{"format": "torchscript-course/1",'),
                 r"tiny.pt.json is not valid JSON \(at byte \d+: .*\); re-save the file"),
    "another format": (lambda p: edit_manifest(p, lambda m: m.update(format="torchscript-course/aoti-1")),
                       r"tiny.pt.json is not a torchscript-course/1 manifest"),
    "malformed field": (lambda p: edit_manifest(p, lambda m: m.update(bytes="286058")),
                        r'tiny.pt.json has a malformed "bytes" \(expected a whole number\)'),
}


@pytest.mark.parametrize("case", list(MODEL_FILE_CASES))
def test_model_file_is_checked_against_its_manifest(binary, tiny_pt, tmp_path, case):
    damage, message = MODEL_FILE_CASES[case]
    model = copy_model(tiny_pt, tmp_path)
    damage(model)
    inputs = write_inputs(tmp_path, *token_inputs(2, 8))
    code, stderr = run_binary(binary, model, inputs, tmp_path / "out.txt")
    assert code == 3 and re.fullmatch(f"error: {message}.*", stderr), stderr
    assert "out.txt" not in os.listdir(tmp_path) and not any(n.startswith(".out.txt") for n in os.listdir(tmp_path))


def test_package_built_by_another_torch_is_refused(binary, tiny_pt2, tmp_path):
    package = copy_model(tiny_pt2[2], tmp_path)
    edit_manifest(package, lambda m: m["versions"].update(torch="2.12.0+cpu"))
    code, stderr = run_binary(binary, package, write_inputs(tmp_path, *token_inputs(2, 8)), tmp_path / "out.txt")
    assert code == 3, stderr
    assert stderr == ("error: tiny.pt2 was compiled by torch 2.12.0+cpu; this run_model links LibTorch 2.13.0. A "
                      "package needs the torch that built it: rebuild it, or build run_model against that torch")


def test_sha256_agrees_with_hashlib_at_block_edges(binary, tiny_pt, tmp_path):
    """SHA-256 pads to 64-byte blocks (55 and 56 bytes straddle the length field): a file whose manifest holds
    hashlib's digest passes the check and reaches the loader (exit 1, not a TorchScript file); a wrong one is 3."""
    inputs = write_inputs(tmp_path, *token_inputs(2, 8))
    for size in [0, 55, 56, 64, 119, 1000, (1 << 20) + 3]:
        data = hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1)
        model = signed(tmp_path / f"bytes{size}.pt", lambda tmp: tmp.write_bytes(data[:size]), like=tiny_pt)
        code, stderr = run_binary(binary, model, inputs, tmp_path / "out.txt")
        assert code == 1 and f"cannot load {model} as TorchScript" in stderr, (size, stderr)
    edit_manifest(model, lambda m: m.update(sha256=hashlib.sha256(b"other").hexdigest()))
    assert run_binary(binary, model, inputs, tmp_path / "out.txt")[0] == 3
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".out.txt")]


def test_pt_refuses_shapes_it_was_not_traced_at(binary, tiny_pt, tiny_bert, tmp_path):
    """The rule files.TracedModel applies: a .pt runs at the shapes in its manifest's "serves" list."""
    run = cpp.run(tiny_pt, write_inputs(tmp_path, *token_inputs(2, 8)), tmp_path / "out.txt", binary=binary)
    assert "serves: 2x8 & 2x8 (the shapes it was traced and checked at)" in run.log
    other = write_inputs(tmp_path, *token_inputs(3, 8), name="three.txt")
    code, stderr = run_binary(binary, tiny_pt, other, tmp_path / "o.txt")
    assert code == 2 and stderr == (
        "error: tiny.pt was traced and checked at 2x8 & 2x8, not 3x8 & 3x8: pad to one of those shapes, or verify "
        "the trace at this shape (tracing.verify) and save it with verified=report; --shapes warn runs it unchecked")
    assert leftovers(tmp_path, "inputs.txt", "three.txt", "out.txt") == []
    warned = cpp.run(tiny_pt, other, tmp_path / "o.txt", shapes="warn", binary=binary)
    assert "warning: tiny.pt was traced and checked at 2x8 & 2x8, not 3x8 & 3x8; running it unchecked" in warned.log
    with torch.no_grad():
        assert accuracy.close(warned.outputs, tiny_bert(*token_inputs(3, 8)))


UNREADABLE_INPUTS = {  # a path to read -> what run_model says (exit code 2)
    "a folder": (lambda tmp: tmp, "is a folder: give the path of a tensor-text file"),
    "a name too long": (lambda tmp: tmp / ("x" * 300), r"cannot be read \(File name too long\): check the path"),
}


@pytest.mark.parametrize("case", list(UNREADABLE_INPUTS))
def test_unreadable_inputs_are_one_error_line(binary, tiny_pt, tmp_path, case):
    """Before, a path the filesystem refuses aborted through std::terminate (a filesystem_error nobody caught)."""
    path, message = UNREADABLE_INPUTS[case]
    code, stderr = run_binary(binary, tiny_pt, path(tmp_path), tmp_path / "out.txt")
    assert code == 2 and len(stderr.splitlines()) == 1 and re.fullmatch(f"error: input file .*{message}.*", stderr)


def test_shape_too_large_for_memory_is_refused_while_reading(binary, tiny_pt, tmp_path):
    (tmp_path / "huge.txt").write_text("# tensor-text v1\ninput_ids int64 1099511627776 2\n")
    code, stderr = run_binary(binary, tiny_pt, tmp_path / "huge.txt", tmp_path / "out.txt")
    assert code == 2 and stderr.endswith("the shape of input_ids holds more than 2^40 values")


@pytest.mark.parametrize("folder", ["missing/", "inputs.txt/"])
def test_unwritable_output_folder_is_its_own_error(binary, tiny_pt, tmp_path, folder):
    """Exit 4, not 2 (bad input): raised before the model is loaded, and nothing is left behind."""
    inputs = write_inputs(tmp_path, *token_inputs(2, 8))
    code, stderr = run_binary(binary, tiny_pt, inputs, tmp_path / folder / "out.txt")
    assert code == 4 and re.fullmatch(r"error: cannot write outputs in .*: (No such file or directory|Not a directory)"
                                      r" - create the folder, or choose one you can write to", stderr), stderr
    assert leftovers(tmp_path, "inputs.txt") == []


def test_outputs_are_written_whole_under_a_temporary_name(binary, tiny_pt, tmp_path):
    """A successful run leaves the outputs file and nothing else; a failed one (here: the model fails on an input
    it cannot embed, after the temporary file was made) leaves neither."""
    run = cpp.run(tiny_pt, write_inputs(tmp_path, *token_inputs(2, 8)), tmp_path / "out.txt", binary=binary)
    assert leftovers(tmp_path, "inputs.txt") == ["out.txt"] and len(run.outputs) == 2
    assert oct(os.stat(tmp_path / "out.txt").st_mode & 0o777) == oct(0o666 & ~current_umask())
    ids, mask = token_inputs(2, 8)
    ids[0, 0] = 5000  # beyond the tiny BERT's vocabulary of 1000: the embedding lookup fails inside LibTorch
    code, stderr = run_binary(binary, tiny_pt, write_inputs(tmp_path, ids, mask, "bad.txt"), tmp_path / "o.txt")
    assert code == 1 and stderr.startswith("error: the model failed on inputs of shape 2x8: "), stderr
    assert leftovers(tmp_path, "inputs.txt", "bad.txt") == ["out.txt"]


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_exit_codes_are_documented_alike(binary):
    """run_model.cpp's header and helpers/cpp.py's docstring hold the same table; the usage text names each code."""
    def table(text, prefix):  # from "0  the outputs..." to the line of code 4, one string
        lines = [line.strip().removeprefix(prefix).strip() for line in text.splitlines()]
        start = lines.index("0  the outputs were written")
        end = next(i for i in range(start, len(lines)) if lines[i].startswith("4  "))
        return " ".join(lines[start:end + 1])
    header = (cpp.source_dir() / "run_model.cpp").read_text()
    assert table(header, "//") == table(cpp.__doc__, "")
    code, stderr = run_binary(binary, "m.pt", "in.txt", "out.txt", "extra")
    assert code == 2 and all(f"{n} " in stderr.split("exit codes:")[1] for n in range(5))
