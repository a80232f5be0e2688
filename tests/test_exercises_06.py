"""Notebook 06's exercise self-checks, each run once with a correct and a wrong answer."""

import torch

from helpers import export, models, shapes

NOTEBOOK = "06_after_torchscript.ipynb"


def test_exercise_1_short_program(run_exercise):
    tiny = models.tiny_model("bert", task="base")  # exporting it is quicker than MiniLM; the check reads the dims
    namespace = {"export": export, "model": tiny, "example": shapes.random_ids(1000, 3, 10, seed=0)}
    right = "export.export_program(model, example, max_batch=16, max_seq=128)"
    assert run_exercise(NOTEBOOK, "short_program", right, namespace) == "correct!"
    wrong = "export.export_program(model, example, max_seq=128)"  # the batch keeps its default range, 1..64
    assert run_exercise(NOTEBOOK, "short_program", wrong, namespace).startswith("not yet")


def test_exercise_2_big_out(run_exercise, minilm, example):
    model, _ = minilm
    namespace = {"torch": torch, "model": model, "example": example}
    chunks = "torch.cat([model(*chunk)[0] for chunk in zip(*(t.split(64) for t in big_batch))])"
    assert run_exercise(NOTEBOOK, "big_out", chunks, namespace) == "correct!"
    assert run_exercise(NOTEBOOK, "big_out", "model(*big_batch)[0][:64]", namespace).startswith("not yet")


def test_exercise_3_onnx_embeddings(run_exercise, minilm):
    model, tokenizer = minilm
    namespace = {"models": models, "model": model, "tokenizer": tokenizer}
    pooled = "models.mean_pool(model(pair['input_ids'], pair['attention_mask'])[0], pair['attention_mask'])"
    assert run_exercise(NOTEBOOK, "onnx_embeddings", pooled, namespace) == "correct!"
    first_token = "model(pair['input_ids'], pair['attention_mask'])[0][:, 0]"
    assert run_exercise(NOTEBOOK, "onnx_embeddings", first_token, namespace).startswith("not yet")
