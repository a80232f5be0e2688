"""Notebook 02's exercise self-checks, each run once with a correct and a wrong answer."""

import torch

from helpers import models, padding, shapes, tracing

NOTEBOOK = "02_dummy_inputs_and_shapes.ipynb"


def test_exercise_1_pad_to_a_trace_at_64(run_exercise):
    namespace = {"torch": torch, "toy": models.CausalToy(), "shapes": shapes, "tracing": tracing}
    solution = ("tracing.trace(toy, shapes.random_inputs(toy, 1, 64), tracer_warnings=False)"
                "(*shapes.pad_batch([exercise_request], 64))[0][0, :20]")
    assert run_exercise(NOTEBOOK, "answer_1", solution, namespace) == "correct!"
    another_request = "toy(torch.arange(11, 31)[None], torch.ones(1, 20, dtype=torch.long))[0][0]"
    assert run_exercise(NOTEBOOK, "answer_1", another_request, namespace).startswith("not yet")


def test_exercise_2_the_bucket_that_saves_most(run_exercise, minilm):
    _, tokenizer = minilm
    lengths = sorted(len(tokenizer(text)["input_ids"]) for text in shapes.load_corpus())
    base = (16, 32, 64, 128)
    best = min(range(1, 128), key=lambda extra: padding.tokens_computed(lengths, sorted({*base, extra})))
    namespace = {"lengths": lengths}
    assert run_exercise(NOTEBOOK, "answer_2", repr((*base, best)), namespace) == "correct!"
    assert run_exercise(NOTEBOOK, "answer_2", repr((*base, 100)), namespace).startswith("not yet")


def test_exercise_3_lengths_the_longformer_trace_runs_at(run_exercise):
    longformer = models.tiny_longformer()
    traced = tracing.trace(longformer, shapes.random_inputs(longformer, 1, 8), tracer_warnings=False)
    namespace = {"longformer": longformer, "longformer_traced": traced}
    assert run_exercise(NOTEBOOK, "answer_3", "[12, 16, 20, 24, 28, 32]", namespace) == "correct!"
    assert run_exercise(NOTEBOOK, "answer_3", "[12]", namespace).startswith("not yet")
