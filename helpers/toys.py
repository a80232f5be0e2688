"""Small hand-written models that show one mechanism each, with no weights to download.

Introduced in notebook 02. `CausalToy` reproduces the classic fixed-shape error of TorchScript traces:
its forward turns the sequence length into a Python int, so the trace records that length as a constant.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from transformers import FunnelConfig, FunnelModel, LongformerConfig, LongformerModel, PretrainedConfig

CLASSIC_ERROR = "The expanded size of the tensor (3) must match the existing size (7) at non-singleton dimension 2"
"""What `CausalToy` traced at length 7 raises at length 3 (the seed's wording, reproduced on torch 2.13)."""


class CausalToy(nn.Module):
    """One causal self-attention step over token embeddings, written the way that breaks a trace.

    `forward(input_ids, attention_mask)` with both `[batch, seq]` returns `(hidden,)`, hidden
    `[batch, seq, hidden_size]`. Position i attends to real positions <= i, so padding after a request
    never changes its outputs. The bug: `int(input_ids.size(1))` is a Python int, so the trace slices the
    causal buffer at the traced length and then expands it to the new one.
    """

    def __init__(self, vocab_size: int = 100, hidden_size: int = 8, max_positions: int = 128):
        super().__init__()
        # A transformers-style config, so helpers.inputs.BucketedModel reads the same limits as for a real model.
        self.config = PretrainedConfig(
            vocab_size=vocab_size, hidden_size=hidden_size, max_position_embeddings=max_positions, pad_token_id=0,
            torchscript=True,  # tuple outputs, like every traced model in the course
        )
        generator = torch.Generator().manual_seed(0)
        self.embed = nn.Embedding(vocab_size, hidden_size)
        with torch.no_grad():
            self.embed.weight.copy_(torch.randn(vocab_size, hidden_size, generator=generator))
        self.register_buffer("causal", torch.tril(torch.ones(max_positions, max_positions)))  # [max, max]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        batch, seq = input_ids.size(0), input_ids.size(1)
        n = int(input_ids.size(1))  # a Python int: the tracer records its value, not where it came from
        allowed = self.causal[:n, :n].expand(batch, seq, seq)  # [batch, seq, seq]
        allowed = allowed * attention_mask[:, None, :].float()  # padding keys are never attended to
        hidden = self.embed(input_ids)  # [batch, seq, hidden]
        scores = (hidden @ hidden.transpose(1, 2)) / hidden.size(-1) ** 0.5  # [batch, seq, seq]
        weights = scores.masked_fill(allowed == 0, float("-inf")).softmax(-1)
        return (weights @ hidden,)  # [batch, seq, hidden]


class QuietFunnel(FunnelModel):
    """transformers' FunnelModel, minus one warning: its code indexes tensors with lists, which torch 2.13
    flags with a UserWarning on every call. Nothing else changes."""

    def forward(self, *args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using a non-tuple sequence", category=UserWarning)
            return super().forward(*args, **kwargs)


def tiny_funnel() -> FunnelModel:
    """A randomly initialised 3-block Funnel Transformer (hidden 32) built from a config, torchscript=True.

    Real transformers code whose trace silently returns wrong numbers at other sequence lengths.
    """
    config = FunnelConfig(
        vocab_size=1000, d_model=32, n_head=2, d_head=16, d_inner=64, block_sizes=[1, 1, 1],
        num_decoder_layers=1, max_position_embeddings=512, torchscript=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return QuietFunnel(config).eval()


def tiny_longformer() -> LongformerModel:
    """A randomly initialised 2-layer Longformer (hidden 32, attention window 4) from a config, torchscript=True.

    Real transformers code whose trace raises at some other sequence lengths.
    """
    config = LongformerConfig(
        vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        attention_window=[4, 4], max_position_embeddings=512, torchscript=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return LongformerModel(config).eval()
