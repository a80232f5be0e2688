"""Text generation with traced modules: token for token what `model.generate` returns, greedy.

Introduced in notebook 07. `TracedSeq2Seq` (MarianMT, BART, T5...) traces an encoder and one decoder step;
`TracedCausalLM` (GPT-2, Llama, Qwen2...) traces one decoder-only step. Both trace at a fixed padded length,
hold only TorchScript modules plus the greedy rules (`rules.GreedyRules`), and save/load with
`helpers.files`' checked files. Their `generate(input_ids, attention_mask, max_new_tokens)` returns exactly
`model.generate(input_ids, attention_mask=..., num_beams=1, do_sample=False, max_new_tokens=...)`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers import PreTrainedModel

from helpers import accuracy, files, shapes, tracing
from helpers.generation import steps
from helpers.generation.rules import GreedyRules

SETTINGS = "generation.json"
REQUIRED = ("kind", "max_length", "rules")
"""Keys every generation.json must hold (besides the format), checked on load."""


def position_limit(model: PreTrainedModel) -> int | None:
    """How many positions the model's position embeddings cover (None: relative positions, e.g. T5)."""
    return getattr(model.config, "max_position_embeddings", None)


def check_positions(model: PreTrainedModel, length: int, what: str) -> None:
    """Refuse to trace at a length the model has no positions for (its embedding lookup would fail)."""
    if length < 2:
        raise ValueError(f"{what}={length}: trace with at least 2 positions (a start token and one new token)")
    limit = position_limit(model)
    if limit is not None and length > limit:
        raise ValueError(
            f"{what}={length} is beyond the model's {limit} positions (config.max_position_embeddings): "
            f"trace with {what} <= {limit}"
        )


def check_batch(input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int) -> None:
    """Clear errors for inputs `generate` cannot take."""
    if input_ids.dim() != 2 or input_ids.dtype != torch.long:
        raise ValueError(f"input_ids must be a 2-D LongTensor [batch, tokens], got {input_ids.dtype} "
                         f"{tuple(input_ids.shape)}: use tokenizer(..., return_tensors='pt')['input_ids']")
    if attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must match input_ids {tuple(input_ids.shape)}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens}: ask for at least 1 new token")


def example_ids(vocab: int, batch: int, length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (ids, mask) [batch, length] for tracing; the last row is padded after half its length."""
    return shapes.random_ids(vocab, batch, length, seed=seed, pad_last=True)


def logits_of(outputs) -> torch.Tensor:
    """The logits of a model's forward: `.logits`, or the first item of the tuple a torchscript=True model returns."""
    return outputs.logits if hasattr(outputs, "logits") else outputs[0]


def check_step(step: torch.nn.Module, inputs: tuple, expected: torch.Tensor) -> None:
    """The traced step must give the model's own logits, or this family has a head `steps` doesn't know."""
    found = accuracy.compare(step(*inputs), expected)
    if not found.ok:
        raise tracing.TraceMismatchError(
            f"the traced step's logits differ from the model's forward ({found}): this model family's LM head "
            "has an extra that helpers.generation.steps.head_logits does not apply"
        )


class TracedGenerator:
    """What both generators share: traced modules by file name, greedy rules, lengths, save and load."""

    KIND = ""
    FILES: tuple[str, ...] = ()

    def __init__(self, modules: dict[str, torch.jit.ScriptModule], rules: GreedyRules, settings: dict):
        self.modules, self.rules, self.settings = modules, rules, settings
        self.max_length: int = settings["max_length"]

    def examples(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """Example inputs per file, with the traced shapes (for the saved manifests)."""
        raise NotImplementedError

    def save(self, folder: str | os.PathLike) -> None:
        """Write each traced module and generation.json, each with its manifest; refuse to replace any file."""
        folder = Path(folder)
        targets = [folder / name for name in (*self.FILES, SETTINGS)]
        files.refuse_overwrite(*targets, *map(files.manifest_path, targets))
        examples = self.examples()
        for name in self.FILES:
            files.save(self.modules[name], folder / name, examples[name])
        payload = {"kind": self.KIND, **self.settings, "rules": self.rules.to_dict()}

        def write(tmp: Path) -> None:
            tmp.write_text(json.dumps(payload, indent=2) + "\n")
        files.write_checked(folder / SETTINGS, write, files.GENERATOR, {"kind": self.KIND})

    @classmethod
    def load(cls, folder: str | os.PathLike):
        """Load a generator saved by `save`: generation.json and every module are checked against their
        manifests first, and generation.json's contents are validated."""
        path = Path(folder) / SETTINGS
        manifest = files.check_file(path, files.GENERATOR)
        try:
            payload = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise files.ModelFileError(f"{path} is not valid JSON ({err}): save the generator again") from err
        missing = [key for key in REQUIRED if key not in payload] if isinstance(payload, dict) else list(REQUIRED)
        if missing:
            raise files.ModelFileError(f"{path} has no {', '.join(missing)}: save the generator again")
        if payload["kind"] != cls.KIND or manifest["kind"] != cls.KIND:
            raise ValueError(f"{path} holds a {payload['kind']!r} generator, not {cls.KIND!r}: "
                             "load it with the class that saved it")
        # The steps run at any batch size (from_model re-traced them at another one and compared) and at the one
        # traced length, which generate() pads to and checks itself: no per-call shape check.
        modules = {name: files.load(Path(folder) / name, shapes="off") for name in cls.FILES}
        rules = GreedyRules(**payload.pop("rules"))
        return cls(modules, rules, {k: v for k, v in payload.items() if k != "kind"})


class TracedSeq2Seq(TracedGenerator):
    """An encoder-decoder generator from two traced modules: encoder.pt and decoder_step.pt."""

    KIND = "seq2seq"
    FILES = ("encoder.pt", "decoder_step.pt")

    @classmethod
    def from_model(cls, model: PreTrainedModel, max_length: int = 64, max_source_length: int | None = None):
        """Trace `model`'s encoder at [B, max_source_length] and its decoder step at [B, max_length]."""
        if not model.config.is_encoder_decoder:
            raise ValueError(f"{type(model).__name__} is decoder-only: use TracedCausalLM.from_model")
        source = max_source_length or max_length
        check_positions(model, max_length, "max_length")
        check_positions(model, source, "max_source_length")
        rules = GreedyRules.from_config(model.generation_config, encoder_decoder=True)
        settings = {"max_length": max_length, "max_source_length": source, "hidden_size": model.config.hidden_size}
        ids, mask = example_ids(model.config.vocab_size, 2, source)
        encoder = tracing.trace(steps.Encoder(model), (ids, mask), check_inputs=[example_ids(7, 3, source)],
                                tracer_warnings=False)  # re-traced at another shape and compared; checked below
        tokens = example_ids(model.config.vocab_size, 2, max_length, seed=1)[0]
        position = min(3, max_length - 1)
        inputs = (tokens, encoder(ids, mask), mask, torch.tensor([position]))
        other = (example_ids(7, 3, max_length)[0], encoder(*example_ids(7, 3, source)), example_ids(7, 3, source)[1])
        step = tracing.trace(steps.Seq2SeqStep(model), inputs, check_inputs=[(*other, torch.tensor([0]))],
                             tracer_warnings=False)
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=tokens[:, :position + 1],
                        use_cache=False)
        check_step(step, inputs, logits_of(out)[:, -1])
        return cls({"encoder.pt": encoder, "decoder_step.pt": step}, rules, settings)

    def examples(self) -> dict[str, tuple[torch.Tensor, ...]]:
        source, hidden = self.settings["max_source_length"], self.settings["hidden_size"]
        ids, mask = example_ids(2, 1, source)
        tokens = example_ids(2, 1, self.max_length)[0]
        return {"encoder.pt": (ids, mask),
                "decoder_step.pt": (tokens, torch.zeros(1, source, hidden), mask, torch.tensor([0]))}

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad the source to the traced length and run the encoder: (states [B, S, H], mask [B, S])."""
        source = self.settings["max_source_length"]
        used = int(attention_mask.any(0).nonzero().max()) + 1 if attention_mask.any() else 1
        if used > source:
            raise ValueError(f"input has {used} tokens; the encoder was traced at max_source_length={source}: "
                             f"truncate (tokenizer(..., truncation=True, max_length={source})) or trace longer")
        pad = self.rules.pad if self.rules.pad is not None else 0
        extra = source - input_ids.shape[1]
        ids = torch.nn.functional.pad(input_ids[:, :source], (0, max(extra, 0)), value=pad)
        mask = torch.nn.functional.pad(attention_mask[:, :source], (0, max(extra, 0)), value=0).long()
        return self.modules["encoder.pt"](ids, mask), mask

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Greedy generation: [B, 1 + n] token ids, n <= max_new_tokens, equal to `model.generate`'s."""
        check_batch(input_ids, attention_mask, max_new_tokens)
        if 1 + max_new_tokens > self.max_length:
            raise ValueError(f"max_new_tokens={max_new_tokens} needs {1 + max_new_tokens} decoder positions; the step "
                             f"was traced at max_length={self.max_length}: ask for at most {self.max_length - 1} "
                             "new tokens or trace with a larger max_length")
        states, mask = self.encode(input_ids, attention_mask)
        pad = self.rules.pad if self.rules.pad is not None else 0
        tokens = torch.full((input_ids.shape[0], self.max_length), pad, dtype=torch.long)  # [B, L]
        tokens[:, 0] = self.rules.decoder_start
        step = self.modules["decoder_step.pt"]
        unfinished = torch.ones(input_ids.shape[0], dtype=torch.bool)
        length = 1
        while length < 1 + max_new_tokens and unfinished.any():
            scores = step(tokens, states, mask, torch.tensor([length - 1]))  # [B, V]
            tokens[:, length], unfinished = self.rules.pick(scores, tokens[:, :length], unfinished, 1,
                                                            1 + max_new_tokens)
            length += 1
        return tokens[:, :length]


class TracedCausalLM(TracedGenerator):
    """A decoder-only generator from one traced module: step.pt."""

    KIND = "causal-lm"
    FILES = ("step.pt",)

    @classmethod
    def from_model(cls, model: PreTrainedModel, max_length: int = 64):
        """Trace one step of `model` at [B, max_length] (prompt + new tokens, right-padded)."""
        if model.config.is_encoder_decoder:
            raise ValueError(f"{type(model).__name__} is an encoder-decoder: use TracedSeq2Seq.from_model")
        check_positions(model, max_length, "max_length")
        rules = GreedyRules.from_config(model.generation_config, encoder_decoder=False)
        ids = example_ids(model.config.vocab_size, 2, max_length)[0]
        mask = torch.ones_like(ids)
        position = min(5, max_length - 1)
        inputs = (ids, mask, torch.tensor([position]))
        checks = [(*example_ids(7, 3, max_length), torch.tensor([0]))]  # another batch and position, compared
        step = tracing.trace(steps.CausalStep(model), inputs, check_inputs=checks, tracer_warnings=False)
        with torch.no_grad():
            out = model(input_ids=ids[:, :position + 1], attention_mask=mask[:, :position + 1], use_cache=False)
        check_step(step, inputs, logits_of(out)[:, -1])
        return cls({"step.pt": step}, rules, {"max_length": max_length})

    def examples(self) -> dict[str, tuple[torch.Tensor, ...]]:
        ids, mask = example_ids(2, 1, self.max_length)
        return {"step.pt": (ids, mask, torch.tensor([0]))}

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Greedy generation: [B, P + n] (the prompt, then n <= max_new_tokens tokens), equal to `model.generate`'s."""
        check_batch(input_ids, attention_mask, max_new_tokens)
        batch, prompt = input_ids.shape
        total = prompt + max_new_tokens
        if total > self.max_length:
            raise ValueError(f"a prompt of {prompt} tokens + max_new_tokens={max_new_tokens} needs {total} positions; "
                             f"the step was traced at max_length={self.max_length}: shorten the prompt, ask for "
                             "fewer tokens, or trace with a larger max_length")
        pad = self.rules.pad if self.rules.pad is not None else 0
        tokens = torch.full((batch, self.max_length), pad, dtype=torch.long)  # [B, L]
        mask = torch.zeros(batch, self.max_length, dtype=torch.long)  # [B, L]
        tokens[:, :prompt], mask[:, :prompt] = input_ids, attention_mask
        unfinished = torch.ones(batch, dtype=torch.bool)
        length = prompt
        while length < total and unfinished.any():
            scores = self.modules["step.pt"](tokens, mask, torch.tensor([length - 1]))  # [B, V]
            tokens[:, length], unfinished = self.rules.pick(scores, tokens[:, :length], unfinished, prompt, total)
            mask[:, length] = 1
            length += 1
        return tokens[:, :length]


def random_cases(count: int, vocab: int, seed: int = 0, max_new_tokens: int = 14
                 ) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """(ids, mask, max_new_tokens) batches: 1-4 rows of 2-12 tokens; rows after the first padded, on the
    left in even cases and on the right in odd ones (padding ids are 5, hidden by the mask)."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for i in range(count):
        batch, length = int(torch.randint(1, 5, (1,), generator=g)), int(torch.randint(2, 13, (1,), generator=g))
        ids = torch.randint(3, vocab - 1, (batch, length), generator=g)
        mask = torch.ones_like(ids)
        for row in range(1, batch):
            cut = int(torch.randint(0, length - 1, (1,), generator=g))
            mask[row, slice(0, cut) if i % 2 == 0 else slice(length - cut, length)] = 0
        ids[mask == 0] = 5
        cases.append((ids, mask, int(torch.randint(1, max_new_tokens + 1, (1,), generator=g))))
    return cases


def references(model: PreTrainedModel, cases: list) -> list[torch.Tensor]:
    """What `model.generate(num_beams=1, do_sample=False, max_new_tokens=n)` returns for each case."""
    with torch.no_grad():
        return [model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, num_beams=1,
                               do_sample=False) for ids, mask, new in cases]


def agreement(generator: TracedGenerator, cases: list, expected: list[torch.Tensor]) -> tuple[int, int]:
    """(equal, total): for how many cases `generator.generate` returns exactly the `expected` output."""
    equal = 0
    for (ids, mask, new), want in zip(cases, expected, strict=True):
        got = generator.generate(ids, mask, new)
        equal += got.shape == want.shape and torch.equal(got, want)
    return equal, len(cases)
