"""Notebook 05's exercise self-checks, each run once with a correct and once with a wrong answer."""

from types import SimpleNamespace

import pytest
import torch

from helpers import timing
from helpers.timing import int8

NOTEBOOK = "05_timing.ipynb"


def test_replaced(run_exercise, minilm):
    model, _ = minilm
    namespace = {"int8_model": int8.quantized(model)}
    count = "sum(type(m).__name__ == 'Linear' and 'quantized' in type(m).__module__ for m in int8_model.modules())"
    assert run_exercise(NOTEBOOK, "replaced", count, namespace) == "correct!"
    assert run_exercise(NOTEBOOK, "replaced", "36", namespace).startswith("not yet"), "the pooler is a Linear too"


@pytest.fixture(scope="module")
def short_checks(minilm):
    """Four sentences at 32 tokens and fp32 eager's embeddings of them: the exercise's work, made cheap."""
    model, tokenizer = minilm
    checks = timing.sentence_inputs(tokenizer, timing.SENTENCES[:4], seq=32)
    return checks, int8.embeddings(model, checks)


def test_kept_cosine(run_exercise, minilm, short_checks):
    model, _ = minilm
    checks, reference = short_checks
    namespace = {"int8": int8, "model": model, "checks": checks, "reference": reference}
    keep = "[n for n in int8.linear_names(model) if n.endswith('output.dense') and 'attention' not in n]"
    right = f"int8.lowest_cosine(int8.quantized(model, keep={keep}), checks, reference)"
    assert run_exercise(NOTEBOOK, "kept_cosine", right, namespace) == "correct!"
    everything = "int8.lowest_cosine(int8.quantized(model), checks, reference)"
    assert run_exercise(NOTEBOOK, "kept_cosine", everything, namespace).startswith("not yet")


def test_achieved(run_exercise, minilm):
    model, _ = minilm
    row = SimpleNamespace(timing=SimpleNamespace(median=0.004))  # 4 ms per call
    namespace = {"timing": timing, "model": model, "inputs": (torch.ones(1, 128, dtype=torch.long),) * 2,
                 "choice": SimpleNamespace(name="jit+oneDNN fusion bf16", comparison={"jit+oneDNN fusion bf16": row})}
    right = "flops / choice.comparison[choice.name].timing.median / 1e9"
    assert run_exercise(NOTEBOOK, "achieved", right, namespace) == "correct!"
    assert run_exercise(NOTEBOOK, "achieved", "flops / 0.004", namespace).startswith("not yet"), "GFLOP/s, not FLOP/s"
