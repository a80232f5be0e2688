"""helpers.export: torch.export programs and AOTInductor packages, checked against the eager models.

An AOTInductor compile takes 10-30 s on 2 cores, so this file compiles two packages in all: MiniLM in fp32
(shared by the session) and a tiny DistilBERT in bf16. Everything else checks programs or existing packages.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch

from helpers import accuracy, course, export, files, models, shapes, tracing

MINILM_SHAPES = [(1, 2), (3, 14), (8, 77), (1, 512), (64, 8)]
TINY_SHAPES = [(1, 2), (7, 33), (64, 128)]


def token_inputs(batch: int, seq: int, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random token ids and a mask whose last row is padded: [batch, seq] each."""
    return shapes.random_ids(vocab, batch, seq, seed=batch * 1000 + seq, pad_last=True)


@pytest.fixture(scope="session")
def minilm_program(minilm, example):
    model, _ = minilm
    return export.export_program(model, example)


@pytest.fixture(scope="session")
def minilm_package(minilm_program):
    """(path, manifest) of MiniLM's package, through the build cache's front door: the same file notebooks 06 and
    08 use (notebooks/build/packages/), so a fresh checkout compiles it once for the tests and both notebooks."""
    path = course.build_folder("packages") / "minilm.pt2"
    return path, export.cached_package(minilm_program, path)


@pytest.fixture
def package_copy(minilm_package, tmp_path):
    """A private copy of the MiniLM package and its manifest, free to damage."""
    path, _ = minilm_package
    shutil.copy(path, tmp_path / path.name)
    shutil.copy(files.manifest_path(path), tmp_path / f"{path.name}.json")
    return tmp_path / path.name


def test_program_serves_batch_and_seq_ranges(minilm, minilm_program):
    model, _ = minilm
    sig = export.signature(minilm_program)
    assert sig["dims"] == {"batch": [1, 64], "seq": [2, 512]}
    assert [(t["name"], t["dims"]) for t in sig["inputs"]] == [("input_ids", ["batch", "seq"]), ("attention_mask", ["batch", "seq"])]
    assert [t["dims"] for t in sig["outputs"]] == [["batch", "seq", 384], ["batch", 384]]
    report = tracing.verify(minilm_program.module(), model, [token_inputs(1, 5, 30522), token_inputs(5, 40, 30522)])
    assert report.ok and len(report.rows) == 2


def test_minilm_package_equals_eager_inside_the_range(minilm, minilm_package):
    model, _ = minilm
    path, _ = minilm_package
    loaded = export.load_package(path)
    report = tracing.verify(loaded, model, [token_inputs(b, s, 30522) for b, s in MINILM_SHAPES])
    assert report.ok and [row.label for row in report.rows] == [f"{b}x{s}" for b, s in MINILM_SHAPES]


def test_manifest_names_inputs_in_call_order_for_cpp(minilm_package):
    path, manifest = minilm_package
    assert json.loads(files.manifest_path(path).read_text()) == manifest
    assert sorted(p.name for p in path.parent.iterdir()) == ["minilm.pt2", "minilm.pt2.json", "minilm.pt2.program"]
    assert manifest["bytes"] == path.stat().st_size and manifest["sha256"] == files.sha256(path)
    assert [t["name"] for t in manifest["inputs"]] == ["input_ids", "attention_mask"] and manifest["call"] == "positional"
    assert manifest["settings"] == {"dtype": None, "freezing": True, "max_autotune": False, "check_lowerbound": False}
    metadata = export.load_package(path).runner.get_metadata()  # what AOTIModelPackageLoader::get_metadata() returns
    assert metadata["course.inputs"] == "input_ids[batch,seq]:int64;attention_mask[batch,seq]:int64"
    assert metadata["course.dims"] == "batch=1..64;seq=2..512"


@pytest.mark.parametrize(
    "inputs, message",
    [
        (token_inputs(1, 513, 30522), r"input_ids has seq 513; this package serves seq 2\.\.512 - truncate"),
        (token_inputs(65, 4, 30522), r"input_ids has batch 65; this package serves batch 1\.\.64 - split the batch"),
        ((torch.ones(2, 4, dtype=torch.long), torch.ones(2, 5, dtype=torch.long)), r"attention_mask has seq 5 but input_ids has 4"),
        ((torch.ones(2, 4), torch.ones(2, 4, dtype=torch.long)), r"input_ids is float32 .* takes int64 \[batch, seq\]"),
    ],
)
def test_shapes_outside_the_range_get_a_clear_error(minilm_package, inputs, message):
    path, _ = minilm_package
    with pytest.raises(ValueError, match=message):
        export.load_package(path)(*inputs)


def test_wrong_input_names_get_a_clear_error(minilm_package):
    loaded = export.load_package(minilm_package[0])
    ids, mask = token_inputs(1, 4, 30522)
    with pytest.raises(TypeError, match=r"missing a required argument: 'attention_mask': this package takes \['input_ids', 'attention_mask'\]"):
        loaded(ids, token_type_ids=mask)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'token_type_ids': this package takes"):
        loaded(ids, mask, token_type_ids=mask)


def test_a_changed_package_is_refused(package_copy):
    data = bytearray(package_copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    package_copy.write_bytes(bytes(data))
    with pytest.raises(files.ModelFileError, match="changed after it was built"):
        export.load_package(package_copy)


def test_a_truncated_package_is_refused(package_copy):
    package_copy.write_bytes(package_copy.read_bytes()[:1000])
    with pytest.raises(files.ModelFileError, match="truncated"):
        export.load_package(package_copy)


def test_a_package_without_manifest_or_from_another_torch_is_refused(package_copy):
    manifest_file = files.manifest_path(package_copy)
    manifest = json.loads(manifest_file.read_text())
    manifest_file.write_text(json.dumps({**manifest, "versions": {**manifest["versions"], "torch": "2.12.0"}}))
    with pytest.raises(files.ModelFileError, match=r"compiled by torch 2\.12\.0; this is torch 2\.13"):
        export.load_package(package_copy)
    manifest_file.unlink()
    with pytest.raises(files.ModelFileError, match="minilm.pt2.json is missing"):
        export.load_package(package_copy)


def test_package_never_overwrites(minilm_program, minilm_package, tmp_path):
    path, manifest = minilm_package
    with pytest.raises(FileExistsError, match="already exist.*overwrite=True"):
        export.package(minilm_program, path)
    assert files.sha256(path) == manifest["sha256"]
    with pytest.raises(ValueError, match=r"must end in \.pt2"):
        export.package(minilm_program, tmp_path / "minilm.so")


def test_cached_package_reuses_a_matching_build(minilm_program, minilm_package, capsys):
    path, manifest = minilm_package
    assert export.cached_package(minilm_program, path) == manifest
    assert capsys.readouterr().out.startswith("reused minilm.pt2")


def test_cached_package_rebuilds_for_another_instruction_set(minilm_program, package_copy, monkeypatch, capsys):
    """A build folder moved to another CPU (or ATEN_CPU_CAPABILITY changed) must not reuse code compiled for the
    old one: Python's loader warns about it, and an older CPU would stop at an illegal instruction."""
    Path(f"{package_copy}.program").write_text(export.fingerprint(minilm_program))
    built = json.loads(files.manifest_path(package_copy).read_text())
    monkeypatch.setattr("torch._inductor.cpu_vec_isa.pick_vec_isa", lambda: "other_isa")
    monkeypatch.setattr(export, "package", lambda *args, **kwargs: {**built, "compile_seconds": 1.0})
    export.cached_package(minilm_program, package_copy)
    assert capsys.readouterr().out == (f"compiled minilm.pt2 in 1.0 s (it was compiled for {built['cpu_isa']}; "
                                       "this CPU runs OTHER_ISA)\n")


def test_tiny_distilbert_bf16_package_matches_eager(tmp_path):
    model = models.tiny_model("distilbert", task="base")
    ids, mask = token_inputs(1, 8, 1000)  # batch 1: widened to 2 so the batch stays dynamic
    program = export.export_program(model, {"input_ids": ids, "attention_mask": mask})
    before = export.fingerprint(program)
    manifest = export.package(program, tmp_path / "distilbert.pt2", dtype=torch.bfloat16)
    loaded = export.load_package(tmp_path / "distilbert.pt2")
    assert export.fingerprint(program) == before, "package(dtype=...) must not cast the caller's program"
    assert manifest["dtype"] == "bfloat16" and manifest["call"] == "keyword"
    for batch, seq in TINY_SHAPES:
        ids, mask = token_inputs(batch, seq, 1000)
        got = loaded(input_ids=ids, attention_mask=mask)[0]
        with torch.no_grad():
            expected = model(input_ids=ids, attention_mask=mask)[0]
        cosine = torch.nn.functional.cosine_similarity(got.float().flatten(1), expected.flatten(1)).min().item()
        assert got.dtype == torch.bfloat16 and cosine > 0.999 and accuracy.max_abs_diff(got, expected) < 0.1


def test_tiny_albert_program_equals_eager():
    model = models.tiny_model("albert", task="base")
    program = export.export_program(model, token_inputs(2, 8, 1000))
    assert export.signature(program)["dims"] == {"batch": [1, 64], "seq": [2, 128]}
    report = tracing.verify(program.module(), model, [token_inputs(b, s, 1000) for b, s in TINY_SHAPES])
    assert report.ok


def test_static_export_serves_only_its_shape():
    model = models.tiny_model("bert", task="base")
    sig = export.signature(export.export_program(model, token_inputs(2, 8, 1000), dynamic=False))
    assert sig["dims"] == {} and sig["inputs"][0]["dims"] == [2, 8]
    with pytest.raises(ValueError, match=r"exported for \[2, 8\] only - export with dynamic=True"):
        export.check_inputs(sig, dict(zip(["input_ids", "attention_mask"], token_inputs(2, 9, 1000))))


def test_one_token_example_is_refused():
    with pytest.raises(ValueError, match="at least 2 tokens"):
        export.export_program(models.tiny_model("bert", task="base"), token_inputs(2, 1, 1000))


def test_package_runs_in_a_process_without_transformers(minilm_package, minilm, example, capsys):
    path, _ = minilm_package
    model, _ = minilm
    outputs = files.run_in_fresh_process(path, example)
    assert "transformers imported: False" in capsys.readouterr().out
    with torch.no_grad():
        assert accuracy.close(outputs, model(*example))
