"""The exercises' reference checks, one function per exercise, grouped by notebook; `course.check` finds them by id.

Each takes the learner's answer and, as keywords, the notebook objects it needs (never a precomputed expected
value), and says whether the answer is right. They live here so that no notebook cell shows its solution; the
numbers in them are the exercise's own, stated in its text.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from helpers import accuracy, cpp, generation, models, padding, timing
from helpers.timing import int8

# Notebook 01: tied weights


def nb01_still_tied(answer: Sequence[tuple[str, str]]) -> bool:
    """The parameter pairs that share storage in a tiny DistilBERT loaded with torchscript=True."""
    return sorted(map(tuple, answer)) == models.tied_parameters(models.tiny_model("distilbert", torchscript=True))


def nb01_retied(answer: torch.nn.Module) -> bool:
    """The masked-LM's decoder weight shares one storage with its word embeddings again."""
    return answer.get_output_embeddings().weight.data_ptr() == answer.get_input_embeddings().weight.data_ptr()


def nb01_extra_bytes(answer: int) -> bool:
    """The bytes the flag's clone adds to XLM-RoBERTa base: one float32 copy of its 250,002 x 768 embeddings."""
    vocab, hidden = 250_002, 768
    return answer == vocab * hidden * torch.float32.itemsize


# Notebook 02: dummy inputs and shapes


def nb02_answer_1(answer: torch.Tensor, *, toy: torch.nn.Module, exercise_request: torch.Tensor) -> bool:
    """The toy's eager output on the request's real tokens, unpadded ([20, 8])."""
    with torch.no_grad():
        expected = toy(exercise_request[None], torch.ones_like(exercise_request)[None])[0][0]
    return answer.shape == expected.shape and accuracy.close(answer, expected)


def nb02_answer_2(answer: Sequence[int], *, lengths: Sequence[int], base: Sequence[int]) -> bool:
    """`base` plus the one extra bucket (below the largest) that computes the fewest positions on `lengths`."""
    best = min(padding.tokens_computed(lengths, sorted({*base, extra})) for extra in range(1, max(base)))
    return (len(set(answer)) == len(base) + 1 and set(base) < set(answer)
            and padding.tokens_computed(lengths, sorted(answer)) == best)


def nb02_answer_3(answer: Sequence[int], *, longformer: torch.nn.Module, longformer_traced: Any) -> bool:
    """The lengths from 9 to 32 (batch 1) at which the Longformer trace runs without raising, sorted."""
    runs = [n for n in range(9, 33)
            if not padding.raw_verdict(longformer_traced, longformer, 1, n).startswith("raises")]
    return list(answer) == runs


# Notebook 03: saving and loading


def nb03_qa_inputs(answer: Sequence[torch.Tensor], *, traced_pair: Any, model: torch.nn.Module,
                   qa_batch: Mapping[str, torch.Tensor]) -> bool:
    """`traced_pair` called on the answer gives what the Python model gives on `qa_batch`."""
    with torch.no_grad():
        return accuracy.close(traced_pair(*answer), model(**qa_batch))


def nb03_tea(answer: torch.Tensor, *, model: torch.nn.Module, tea_inputs: Mapping[str, torch.Tensor]) -> bool:
    """The mean-pooled, normalised embeddings of `tea_inputs`, as the Python model gives them."""
    mask = tea_inputs["attention_mask"]
    with torch.no_grad():
        expected = models.mean_pool(model(tea_inputs["input_ids"], mask)[0], mask)
    return accuracy.close(answer, expected)


def nb03_served_4x32(answer: Any, *, model: torch.nn.Module, request4: tuple[torch.Tensor, ...]) -> bool:
    """A files.TracedModel that refuses unchecked shapes and gives the Python model's numbers on `request4`."""
    with torch.no_grad():
        return answer.shapes == "refuse" and accuracy.close(answer(*request4), model(*request4))


# Notebook 04: Inferentia


def nb04_served_32(answer: torch.Tensor, *, model: torch.nn.Module, request: Mapping[str, torch.Tensor],
                   tolerance: accuracy.Tolerance) -> bool:
    """Eager MiniLM's outputs on the unpadded `request`'s real tokens, within `tolerance`."""
    with torch.no_grad():
        expected = model(request["input_ids"], request["attention_mask"])[0][0]
    return answer.shape == expected.shape and accuracy.close(answer, expected, tolerance)


def nb04_rows(answer: int) -> bool:
    """The rows each DataParallel call sends: a batch-4 compile on each of an inf2.xlarge's 2 NeuronCores."""
    cores, compiled_batch = 2, 4
    return answer == cores * compiled_batch


def nb04_refused(answer: Sequence[str]) -> bool:
    """The inputs a static 8 x 128 optimum-neuron model refuses: those larger than it in some dimension."""
    batch, tokens = 8, 128
    sent = {"a": (1, 20), "b": (8, 128), "c": (4, 200), "d": (16, 64)}
    return set(answer) == {name for name, (rows, length) in sent.items() if rows > batch or length > tokens}


# Notebook 05: timing


def nb05_replaced(answer: int, *, int8_model: torch.nn.Module) -> bool:
    """How many modules of `int8_model` are quantized Linear layers (the pooler's included)."""
    return answer == sum(type(m).__name__ == "Linear" and "quantized" in type(m).__module__
                         for m in int8_model.modules())


def nb05_kept_cosine(answer: float, *, model: torch.nn.Module, checks: Any, reference: torch.Tensor) -> bool:
    """The lowest cosine on `checks` with the feed-forward down-projections in fp32 and every other Linear int8."""
    kept = int8.families(int8.linear_names(model))["encoder.layer.*.output.dense"]
    return abs(answer - int8.lowest_cosine(int8.quantized(model, keep=kept), checks, reference)) < 2e-3


def nb05_achieved(answer: float, *, model: torch.nn.Module, inputs: Sequence[torch.Tensor], choice: Any) -> bool:
    """GFLOP/s of the chosen path: one forward's FLOPs at `inputs`' shape over its median seconds per call."""
    flops = timing.encoder_flops(model.config, batch=inputs[0].shape[0], seq=inputs[0].shape[1])
    return abs(answer / (flops / choice.comparison[choice.name].timing.median / 1e9) - 1) < 0.02


# Notebook 06: after TorchScript


def nb06_short_program(answer: Any) -> bool:
    """An ExportedProgram whose dims are batch 1..16 and seq 2..128."""
    from helpers import export  # torch.export: absent on the Inf1 stack (torch 1.13), which runs notebook 04

    return export.signature(answer)["dims"] == {"batch": [1, 16], "seq": [2, 128]}


def nb06_big_out(answer: torch.Tensor, *, model: torch.nn.Module, big_batch: tuple[torch.Tensor, ...]) -> bool:
    """The last hidden state of every sentence of `big_batch`, as the Python model gives it."""
    with torch.no_grad():
        return accuracy.close(answer, model(*big_batch)[0])


def nb06_onnx_embeddings(answer: torch.Tensor, *, model: torch.nn.Module, pair: Mapping[str, torch.Tensor]) -> bool:
    """The mean-pooled, normalised embeddings of `pair`, as the Python model gives them."""
    with torch.no_grad():
        expected = models.mean_pool(model(pair["input_ids"], pair["attention_mask"])[0], pair["attention_mask"])
    return accuracy.close(answer, expected)


# Notebook 07: generation


def nb07_bart_rules(answer: generation.GreedyRules, *, bart: torch.nn.Module, bart_traced: generation.TracedSeq2Seq,
                    bart_cases: list) -> bool:
    """Rules with which `bart_traced`'s modules equal `bart.generate()` on every one of `bart_cases`."""
    generator = generation.TracedSeq2Seq(bart_traced.modules, answer, bart_traced.settings)
    equal, total = generation.agreement(generator, bart_cases, generation.references(bart, bart_cases))
    return equal == total


def nb07_most_new_tokens(answer: int, *, gpt_traced: generation.TracedCausalLM) -> bool:
    """The most new tokens `gpt_traced` generates after prompts of 20 tokens: its length minus the prompt's."""
    prompt = 20
    return answer == gpt_traced.max_length - prompt


def nb07_positions_run(answer: tuple[int, int], *, traced: generation.TracedSeq2Seq) -> bool:
    """(traced, cached) decoder positions for 16 new tokens: all `max_length` per step, or the newest one."""
    steps = 16
    return tuple(answer) == (steps * traced.max_length, steps)


# Notebook 08: C++


def nb08_small_pt2(answer: str | Path, *, tokenizer: Callable, workdir: Path) -> bool:
    """A .pt2 that run_model runs on 8 sentences and whose `serves` line says batch 1..8, seq 2..64."""
    eight = cpp.write_inputs(workdir / "eight.txt", tokenizer(["Short one."] * 8, return_tensors="pt"),
                             overwrite=True)
    return "batch 1..8, seq 2..64" in cpp.run(answer, eight, workdir / "ex1.txt", overwrite=True).log


def nb08_rust_ids(answer: Sequence[int], *, tokenizer: Callable) -> bool:
    """The ids of "Tokenize me in Rust.", as the model's tokenizer gives them."""
    return list(answer) == tokenizer("Tokenize me in Rust.")["input_ids"]


def nb08_verified_pt(answer: str | Path, *, model: torch.nn.Module, many_example: tuple[torch.Tensor, ...],
                     workdir: Path) -> bool:
    """A .pt that run_model serves on workdir's many.txt (`many_example`) with the Python model's outputs."""
    with torch.no_grad():
        expected = model(*many_example)
    served = cpp.run(answer, workdir / "many.txt", workdir / "ex3.txt", overwrite=True)
    return accuracy.close(served.outputs, expected)


CHECKS: dict[str, Callable[..., bool]] = {
    "01.1": nb01_still_tied, "01.2": nb01_retied, "01.3": nb01_extra_bytes,
    "02.1": nb02_answer_1, "02.2": nb02_answer_2, "02.3": nb02_answer_3,
    "03.1": nb03_qa_inputs, "03.2": nb03_tea, "03.3": nb03_served_4x32,
    "04.1": nb04_served_32, "04.2": nb04_rows, "04.3": nb04_refused,
    "05.1": nb05_replaced, "05.2": nb05_kept_cosine, "05.3": nb05_achieved,
    "06.1": nb06_short_program, "06.2": nb06_big_out, "06.3": nb06_onnx_embeddings,
    "07.1": nb07_bart_rules, "07.2": nb07_most_new_tokens, "07.3": nb07_positions_run,
    "08.1": nb08_small_pt2, "08.2": nb08_rust_ids, "08.3": nb08_verified_pt,
}
"""Each exercise's check by id: "05.1" is notebook 05's exercise 1."""


def bound(exercise: str, context: Mapping[str, Any]) -> Callable[[Any], bool]:
    """Exercise `exercise`'s check with `context` bound to its keywords, ready to call on an answer.

    Raises KeyError for an unknown id and TypeError when `context` is not exactly what the check reads: both are
    mistakes in the notebook's cell, not in the learner's answer.
    """
    if exercise not in CHECKS:
        raise KeyError(f"no exercise {exercise!r}: the exercises are {', '.join(CHECKS)}")
    test = CHECKS[exercise]
    needed = sorted(name for name, p in inspect.signature(test).parameters.items() if p.kind is p.KEYWORD_ONLY)
    if sorted(context) != needed:
        raise TypeError(f"exercise {exercise}'s check reads {needed or 'nothing'} from the notebook, "
                        f"but the cell passes {sorted(context) or 'nothing'}")
    return functools.partial(test, **context)
