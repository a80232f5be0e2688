"""Notebook 03's exercise self-checks, each run once with a correct and once with a wrong answer."""

import pytest
import torch

from helpers import files, models, tracing

NOTEBOOK = "03_saving_and_loading.ipynb"
SENTENCES = ["TorchScript turns a model into a program.", "It is saved to one file.", "Loading needs only torch."]


@pytest.fixture(scope="module")
def traced_pair(minilm):
    """MiniLM traced on a sentence pair in forward's order, as the notebook's section 3 does."""
    model, tokenizer = minilm
    pair = tokenizer("Who was Jim Henson ?", "Jim Henson was a puppeteer", return_tensors="pt")
    return tracing.trace(model, (pair["input_ids"], pair["attention_mask"], pair["token_type_ids"]))


def test_qa_inputs(run_exercise, minilm, traced_pair):
    model, tokenizer = minilm
    namespace = {"model": model, "tokenizer": tokenizer, "traced_pair": traced_pair}
    right = "(qa_batch['input_ids'], qa_batch['attention_mask'], qa_batch['token_type_ids'])"
    assert run_exercise(NOTEBOOK, "qa_inputs", right, namespace) == "correct!"
    swapped = "(qa_batch['input_ids'], qa_batch['token_type_ids'], qa_batch['attention_mask'])"
    assert run_exercise(NOTEBOOK, "qa_inputs", swapped, namespace).startswith("not yet")


def embed(loaded, encoded):
    """A correct answer to exercise 2: mean-pooled embeddings computed by the loaded file alone."""
    with torch.no_grad():
        hidden = loaded(encoded["input_ids"], encoded["attention_mask"])[0]
    return models.mean_pool(hidden, encoded["attention_mask"])


def test_tea(run_exercise, minilm, traced_minilm):
    model, tokenizer = minilm
    namespace = {"torch": torch, "model": model, "tokenizer": tokenizer, "loaded": traced_minilm, "embed": embed}
    assert run_exercise(NOTEBOOK, "tea", "embed(loaded, tea_inputs)", namespace) == "correct!"
    assert run_exercise(NOTEBOOK, "tea", "torch.zeros(2, 384)", namespace).startswith("not yet")


def serve_at(traced, model, inputs, path, verify: bool):
    """Save `traced` (verified at `inputs` when `verify`) and load it back, as exercise 3 asks."""
    report = tracing.verify(traced, model, [inputs]) if verify else None
    files.save(traced, path, inputs if verify else tuple(t[:1, :8] for t in inputs), verified=report)
    return files.load(path)


def test_served_4x32(run_exercise, minilm, traced_minilm, tmp_path):
    model, tokenizer = minilm
    namespace = {"model": model, "tokenizer": tokenizer, "sentences": SENTENCES, "traced": traced_minilm,
                 "serve_at": serve_at, "tmp": tmp_path}
    right = "serve_at(traced, model, request4, tmp / 'ok.pt', verify=True)"
    assert run_exercise(NOTEBOOK, "served_4x32", right, namespace) == "correct!"
    unchecked = "serve_at(traced, model, request4, tmp / 'unchecked.pt', verify=False)"
    assert run_exercise(NOTEBOOK, "served_4x32", unchecked, namespace).startswith("not yet")
