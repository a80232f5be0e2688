"""Notebook 07's exercise self-checks, each run once with a correct and a wrong answer."""

import types

import pytest

from helpers import course, generation

NOTEBOOK = "07_generation.ipynb"


@pytest.fixture(scope="module")
def bart():
    """What exercise 1's setup cell builds and its check reads: a tiny BART, its traced generator, 6 batches."""
    with course.threads(1):
        model = generation.models.tiny_seq2seq("bart")
        return {"generation": generation, "bart": model,
                "bart_cases": generation.random_cases(6, model.config.vocab_size, seed=2),
                "bart_traced": generation.TracedSeq2Seq.from_model(model, max_length=32)}


def test_exercise_1_bart_rules(run_exercise, bart):
    forced = "generation.GreedyRules(eos=[2], pad=1, decoder_start=2, forced_bos=0, forced_eos=[2])"
    assert run_exercise(NOTEBOOK, "bart_rules", forced, bart) == "correct!"
    first_loop = "generation.GreedyRules(eos=[2], pad=1, decoder_start=2)"
    assert run_exercise(NOTEBOOK, "bart_rules", first_loop, bart).startswith("not yet")


def test_exercise_2_most_new_tokens(run_exercise):
    namespace = {"gpt_traced": types.SimpleNamespace(max_length=48)}
    assert run_exercise(NOTEBOOK, "most_new_tokens", "28", namespace) == "correct!"
    assert run_exercise(NOTEBOOK, "most_new_tokens", "48", namespace).startswith("not yet")


def test_exercise_3_positions_run(run_exercise):
    namespace = {"traced": types.SimpleNamespace(max_length=32)}
    assert run_exercise(NOTEBOOK, "positions_run", "(512, 16)", namespace) == "correct!"
    assert run_exercise(NOTEBOOK, "positions_run", "(32, 16)", namespace).startswith("not yet")
