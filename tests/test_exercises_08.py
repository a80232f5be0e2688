"""Notebook 08's exercise self-checks, each run once with a correct and a wrong answer.

They run the C++ program for real, on the tiny BERT's .pt and .pt2 from conftest.py (no compile of their own):
its .pt2 serves batch 1..8 and seq 2..64, exercise 1's answer.
"""

from tokenizers import Tokenizer

from conftest import token_inputs
from helpers import cpp, files, tracing

NOTEBOOK = "08_cpp.ipynb"


def tiny_tokenizer(texts, return_tensors="pt"):
    """Stands in for the notebook's tokenizer: ids the tiny BERT's vocabulary of 1000 holds, 4 tokens a text."""
    ids, mask = token_inputs(len(texts), 4)
    return {"input_ids": ids, "attention_mask": mask}


def test_exercise_1_small_package(run_exercise, binary, tiny_pt2, tiny_pt, tmp_path):
    namespace = {"workdir": tmp_path, "tokenizer": tiny_tokenizer}
    assert run_exercise(NOTEBOOK, "small_pt2", repr(str(tiny_pt2[2])), namespace) == "correct!"
    assert run_exercise(NOTEBOOK, "small_pt2", repr(str(tiny_pt)), namespace).startswith("not yet")


def test_exercise_2_rust_ids(run_exercise, minilm, tmp_path):
    tokenizer = minilm[1]
    tokenizer.backend_tokenizer.save(str(tmp_path / "tokenizer.json"))
    rust = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    rust.no_padding()
    namespace = {"tokenizer": tokenizer, "rust": rust}
    assert run_exercise(NOTEBOOK, "rust_ids", 'rust.encode("Tokenize me in Rust.").ids', namespace) == "correct!"
    assert run_exercise(NOTEBOOK, "rust_ids", '[101, 102]', namespace).startswith("not yet")


def test_exercise_3_verified_pt(run_exercise, binary, tiny_bert, tiny_pt, tmp_path):
    many = token_inputs(70, 5)
    cpp.write_inputs(tmp_path / "many.txt", dict(zip(cpp.INPUT_NAMES, many)))
    traced = tracing.trace(tiny_bert, token_inputs(2, 8))
    report = tracing.verify(traced, tiny_bert, [many])
    files.save(traced, tmp_path / "verified.pt", token_inputs(2, 8), verified=report)
    namespace = {"workdir": tmp_path, "model": tiny_bert, "many_example": many}
    assert run_exercise(NOTEBOOK, "verified_pt", repr(str(tmp_path / "verified.pt")), namespace) == "correct!"
    assert run_exercise(NOTEBOOK, "verified_pt", repr(str(tiny_pt)), namespace).startswith("not yet")
