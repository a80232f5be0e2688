"""Notebook 04's exercise self-checks, each run once with a correct and a wrong answer."""

import torch

from helpers import accuracy, neuron, shapes

NOTEBOOK = "04_inferentia.ipynb"
REQUEST = "A short request."


def test_exercise_1_serve_through_a_second_bucket(run_exercise, minilm):
    model, tokenizer = minilm
    namespace = {"model": model, "tokenizer": tokenizer, "neuron": neuron, "shapes": shapes,
                 "request": tokenizer([REQUEST], return_tensors="pt"),
                 "tolerance": accuracy.tolerance_for(torch.float32)}
    solution = ("(lambda traced, padded: traced(padded['input_ids'], padded['attention_mask'])[0][0, :6])("
                "neuron.trace_for_inferentia(model, shapes.dummy_inputs(tokenizer, (1, 32)))[0], "
                f"tokenizer([{REQUEST!r}], padding='max_length', max_length=32, return_tensors='pt'))")
    assert run_exercise(NOTEBOOK, "served_32", solution, namespace) == "correct!"
    without_mask = solution.replace("padded['attention_mask']", "torch.ones(1, 32, dtype=torch.long)")
    assert run_exercise(NOTEBOOK, "served_32", without_mask, {**namespace, "torch": torch}).startswith("not yet")


def test_exercise_2_rows_per_dataparallel_call(run_exercise):
    assert run_exercise(NOTEBOOK, "rows", "8", {}) == "correct!"
    assert run_exercise(NOTEBOOK, "rows", "4", {}).startswith("not yet")


def test_exercise_3_inputs_a_static_optimum_model_refuses(run_exercise):
    assert run_exercise(NOTEBOOK, "refused", '{"c", "d"}', {}) == "correct!"
    assert run_exercise(NOTEBOOK, "refused", '{"a", "c", "d"}', {}).startswith("not yet")
