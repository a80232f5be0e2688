"""Greedy decoding rules, read from a model's generation config and applied exactly as `generate()` does.

Introduced in notebook 07. `model.generate(num_beams=1, do_sample=False)` is argmax plus a few rules from
`model.generation_config`: start token, forced BOS/EOS, banned words, minimum length, EOS stopping, and pad
for rows that already finished. `GreedyRules` holds those rules as plain data (saved as JSON beside the
traced modules) and `GreedyRules.pick` applies them to one step's logits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from transformers import GenerationConfig

UNSUPPORTED = (
    "repetition_penalty", "encoder_repetition_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size",
    "sequence_bias", "exponential_decay_length_penalty", "begin_suppress_tokens", "forced_decoder_ids",
    "guidance_scale", "watermarking_config", "stop_strings", "max_time", "remove_invalid_values",
)
"""Generation settings that change greedy output and that this loop does not implement: refused, not ignored."""


def _ids(value: int | list[int] | None) -> list[int]:
    """A token id or list of ids as a list ([] for None)."""
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


@dataclass
class GreedyRules:
    """What `generate()` does around the argmax, as plain data. Build it with `from_config`."""

    eos: list[int] = field(default_factory=list)
    pad: int | None = None
    decoder_start: int | None = None
    forced_bos: int | None = None
    forced_eos: list[int] = field(default_factory=list)
    bad_words: list[list[int]] = field(default_factory=list)
    suppress: list[int] = field(default_factory=list)
    min_length: int = 0
    min_new_tokens: int = 0

    @classmethod
    def from_config(cls, config: GenerationConfig, encoder_decoder: bool) -> GreedyRules:
        """The rules `generate()` would apply for this generation config; refuses settings it cannot honour."""
        default = GenerationConfig()
        changed = [name for name in UNSUPPORTED if getattr(config, name, None) != getattr(default, name, None)]
        if changed:
            settings = ", ".join(f"{name}={getattr(config, name)!r}" for name in changed)
            raise NotImplementedError(
                f"the generation config sets {settings}, which this greedy loop does not implement; reset it "
                "on model.generation_config before tracing, or serve this model with model.generate"
            )
        eos = _ids(config.eos_token_id)
        pad = config.pad_token_id if config.pad_token_id is not None else (eos[0] if eos else None)
        start = config.decoder_start_token_id if config.decoder_start_token_id is not None else config.bos_token_id
        if encoder_decoder and start is None:
            raise ValueError("the generation config has neither decoder_start_token_id nor bos_token_id: set one")
        return cls(
            eos=eos, pad=pad, decoder_start=start if encoder_decoder else None,
            forced_bos=config.forced_bos_token_id, forced_eos=_ids(config.forced_eos_token_id),
            bad_words=[list(w) for w in config.bad_words_ids or [] if list(w) not in [[e] for e in eos]],
            suppress=_ids(config.suppress_tokens), min_length=config.min_length or 0,
            min_new_tokens=config.min_new_tokens or 0,
        )

    def to_dict(self) -> dict:
        """JSON-ready form, for saving beside the traced modules."""
        return dataclasses.asdict(self)

    def process(self, scores: torch.Tensor, tokens: torch.Tensor, prompt: int, max_length: int) -> torch.Tensor:
        """Apply the logits processors of `generate()`, in its order, to scores [B, V] for tokens [B, T] so far."""
        scores = scores.clone()
        length = tokens.shape[1]
        for word in self.bad_words:  # NoBadWords: ban a word's last token once its prefix has been generated
            prefix = torch.tensor(word[:-1], dtype=tokens.dtype)
            if len(prefix) <= length:
                scores[(tokens[:, length - len(prefix):] == prefix).all(1), word[-1]] = -float("inf")
        if self.eos and (length < self.min_length or length - prompt < self.min_new_tokens):
            scores[:, self.eos] = -float("inf")  # MinLength / MinNewTokensLength
        if self.forced_bos is not None and length == 1:
            scores[:, :] = -float("inf")
            scores[:, self.forced_bos] = 0.0
        if self.forced_eos and length == max_length - 1:
            scores[:, :] = -float("inf")
            scores[:, self.forced_eos] = 0.0
        if self.suppress:
            scores[:, self.suppress] = -float("inf")
        return scores

    def pick(
        self, scores: torch.Tensor, tokens: torch.Tensor, unfinished: torch.Tensor, prompt: int, max_length: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(next tokens [B], still unfinished [B]) for one step: argmax, pad for finished rows, EOS check."""
        best = self.process(scores.float(), tokens, prompt, max_length).argmax(-1)  # [B]
        if self.eos:
            best = torch.where(unfinished, best, torch.full_like(best, self.pad))
            unfinished = unfinished & ~torch.isin(best, torch.tensor(self.eos))
        return best, unfinished
