"""The traceable pieces of a text generator: an encoder, and one decoder step at a fixed padded length.

Introduced in notebook 07. `generate()` is a Python loop and cannot be traced, but each forward it calls can.
These wrappers take and return plain tensors, run without a KV cache (`use_cache=False`) and pick the
logits at one position inside the graph, so `helpers.generation` can trace each once and drive them from
an ordinary Python loop.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel


def head_logits(model: PreTrainedModel, hidden: torch.Tensor) -> torch.Tensor:
    """The model's LM head on decoder hidden states, with the extras some families add.

    Marian, BART, Pegasus and mBART add a `final_logits_bias` buffer after the projection; T5 with tied
    embeddings scales the hidden states by d_model ** -0.5 first. `generation.check_step` compares the
    result with the model's own forward, so a family with another extra fails loudly, not silently.
    """
    if getattr(model.config, "model_type", "") in {"t5", "mt5", "umt5"} and model.config.tie_word_embeddings:
        hidden = hidden * model.config.d_model**-0.5
    logits = model.get_output_embeddings()(hidden)  # [..., vocab]
    bias = getattr(model, "final_logits_bias", None)
    return logits + bias if bias is not None else logits


def causal_mask(attention_mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[B, L] 0/1 mask -> [B, 1, L, L] additive float mask: 0 where query i may see key j, else dtype's min.

    Key j is visible to query i when j <= i and token j is real. The minimum (not -inf) keeps rows that
    see nothing, such as left padding, finite instead of NaN.
    """
    length = attention_mask.shape[-1]
    ones = torch.ones(length, length, dtype=torch.bool, device=attention_mask.device)
    allowed = ones.tril()[None, None] & attention_mask[:, None, None, :].bool()  # [B, 1, L, L]
    return (~allowed).to(dtype) * torch.finfo(dtype).min


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip padding, as `generate` computes them: [0, 0, 1, 1, 2] for mask [0, 0, 1, 1, 1]..."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)


class Encoder(torch.nn.Module):
    """(input_ids [B, S], attention_mask [B, S]) -> encoder hidden states [B, S, H]."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.encoder = model.get_encoder()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]


class Seq2SeqStep(torch.nn.Module):
    """One decoder step: (ids [B, L], encoder states [B, S, H], encoder mask [B, S], position [1]) -> logits [B, V].

    The decoder runs over all L positions of the right-padded ids; causal attention keeps the padding after
    `position` from changing the logits at `position`, which are the only ones sent through the LM head.
    """

    def __init__(self, model: PreTrainedModel, with_bias: bool = True):
        super().__init__()
        self.model = model
        self.with_bias = with_bias  # False only to show the final_logits_bias trap in notebook 07

    def forward(
        self, ids: torch.Tensor, states: torch.Tensor, mask: torch.Tensor, position: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.model.get_decoder()(
            input_ids=ids, encoder_hidden_states=states, encoder_attention_mask=mask,
            use_cache=False, return_dict=False,
        )[0]  # [B, L, H]
        hidden = hidden.index_select(1, position).squeeze(1)  # [B, H]
        if self.with_bias:
            return head_logits(self.model, hidden)
        return self.model.get_output_embeddings()(hidden)


class CausalStep(torch.nn.Module):
    """One decoder-only step: (ids [B, L], mask [B, L], position [1]) -> logits [B, V] at `position`.

    Builds the 4-D causal mask and the padding-aware position ids itself: transformers' own mask builder
    uses vmap, which `torch.jit.trace` cannot record (`RuntimeError: unordered_map::at`).
    """

    def __init__(self, model: PreTrainedModel, with_positions: bool = True):
        super().__init__()
        self.model = model
        self.with_positions = with_positions  # False only to show the position_ids trap in notebook 07

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        positions = position_ids(mask) if self.with_positions else None
        hidden = self.model.base_model(
            input_ids=ids, attention_mask=causal_mask(mask, self.model.dtype), position_ids=positions,
            use_cache=False, return_dict=False,
        )[0]  # [B, L, H]
        return head_logits(self.model, hidden.index_select(1, position).squeeze(1))  # [B, V]
