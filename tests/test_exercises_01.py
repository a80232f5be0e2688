"""Notebook 01's exercise self-checks, each run once with a correct and once with a wrong answer."""

from helpers import models

NOTEBOOK = "01_tied_weights.ipynb"


def test_still_tied(run_exercise):
    namespace = {"models": models}
    assert run_exercise(NOTEBOOK, "still_tied", "[]", namespace) == "correct!"
    bert_like = "[('distilbert.embeddings.word_embeddings.weight', 'vocab_projector.weight')]"
    assert run_exercise(NOTEBOOK, "still_tied", bert_like, namespace).startswith("not yet")


def retie(model):
    """A correct answer to exercise 2: put the embedding Parameter in the decoder too."""
    model.cls.predictions.decoder.weight = model.bert.embeddings.word_embeddings.weight
    return model


def test_retied(run_exercise):
    namespace = {"models": models, "retie": retie}
    solution = "retie(models.tiny_model('bert', torchscript=True))"
    assert run_exercise(NOTEBOOK, "retied", solution, namespace) == "correct!"
    assert run_exercise(NOTEBOOK, "retied", "models.tiny_model('bert', torchscript=True)", namespace).startswith("not yet")


def test_extra_bytes(run_exercise):
    assert run_exercise(NOTEBOOK, "extra_bytes", "250_002 * 768 * 4", {}) == "correct!"
    assert run_exercise(NOTEBOOK, "extra_bytes", "30522 * 768 * 4", {}).startswith("not yet")
