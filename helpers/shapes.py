"""Input shapes for tracing and serving: dummy inputs, random ids, the shipped corpus, padding and buckets.

Introduced in notebook 02. A trace records the shapes of its example inputs; `BucketedModel` serves any
request length by padding it to one of a few fixed lengths (buckets), and checks every shape it serves
against the eager model before trusting a trace with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources

import torch
from transformers import PreTrainedTokenizerBase

from helpers import accuracy, tracing

FILLER = "TorchScript records the operations a model runs for one example input."
"""The text `dummy_inputs` repeats to build inputs of an exact shape."""


def load_corpus() -> list[str]:
    """The course's own text corpus (helpers/data/corpus.txt): one request per line, from 2-word queries
    to 90-word emails, written for this course (no download)."""
    text = resources.files("helpers").joinpath("data/corpus.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def dummy_inputs(
    tokenizer: PreTrainedTokenizerBase, texts_or_shape: str | Sequence[str] | tuple[int, int], length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both `[batch, seq]` int64, ready for `torch.jit.trace`.

    Texts are tokenized with truncation and padded to the longest, or to `length` if given. A shape
    `(batch, seq)` gives real token ids of exactly that shape: special tokens around repeated `FILLER`.
    """
    if isinstance(texts_or_shape, tuple) and all(isinstance(n, int) for n in texts_or_shape):
        return _shaped_inputs(tokenizer, *texts_or_shape)
    texts = [texts_or_shape] if isinstance(texts_or_shape, str) else list(texts_or_shape)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("pass one text, a list of texts, or a (batch, seq) tuple of ints, e.g. (1, 16)")
    padding = "max_length" if length else "longest"
    enc = tokenizer(texts, padding=padding, truncation=True, max_length=length, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def _shaped_inputs(tokenizer: PreTrainedTokenizerBase, batch: int, seq: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real token ids of shape [batch, seq], with the tokenizer's special tokens; mask all ones."""
    specials = tokenizer.num_special_tokens_to_add()
    limit = tokenizer.model_max_length
    if batch < 1 or seq <= specials:
        raise ValueError(f"shape ({batch}, {seq}) is too small: need batch >= 1 and seq > {specials} special tokens")
    if seq > limit:
        raise ValueError(f"seq {seq} exceeds the tokenizer's model_max_length {limit}: use seq <= {limit}")
    body = tokenizer(FILLER, add_special_tokens=False)["input_ids"]
    body = (body * (seq // len(body) + 1))[: seq - specials]
    row = tokenizer.build_inputs_with_special_tokens(body)
    ids = torch.tensor([row] * batch)  # [batch, seq]
    return ids, torch.ones_like(ids)


def random_ids(vocab_size: int, batch: int, length: int, *, seed: int = 0, low: int = 0,
               pad_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random token ids [batch, length] in low..vocab_size-1 and their attention mask: all ones, or with
    the last row padded after half its length (`pad_last=True`). The global RNG is left untouched."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(low, vocab_size, (batch, length), generator=generator)  # [batch, length]
    mask = torch.ones_like(ids)
    if pad_last:
        mask[-1, length // 2 + 1:] = 0
    return ids, mask


def random_inputs(model: torch.nn.Module, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`random_ids` for `model` at [batch, length]: ids from its vocabulary (skipping the first 5, often special
    tokens), a full mask, and a seed of its own per shape."""
    return random_ids(model.config.vocab_size, batch, length, seed=batch * 1000 + length, low=5)


def bucket_for(length: int, buckets: Sequence[int]) -> int:
    """The smallest bucket that holds `length` tokens; ValueError naming the limit and the fix if none does."""
    for bucket in buckets:
        if length <= bucket:
            return bucket
    raise ValueError(f"request has {length} tokens; largest bucket is {buckets[-1]} - add a bucket or truncate")


def pad_batch(requests: Sequence[torch.Tensor], length: int, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D token-id tensors to `length`: (input_ids, attention_mask), both [len(requests), length]."""
    ids = torch.full((len(requests), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(requests), length), dtype=torch.long)
    for row, request in enumerate(requests):
        ids[row, : len(request)] = request
        mask[row, : len(request)] = 1
    return ids, mask


def check_requests(requests: Sequence[torch.Tensor], largest: int, vocab_size: int | None = None) -> None:
    """ValueError, naming the limit and the fix, unless every request is 1-D int64 token ids of 1..largest tokens."""
    if isinstance(requests, torch.Tensor) or not isinstance(requests, (list, tuple)):
        raise ValueError(f"pass a list of 1-D token-id tensors, e.g. [ids[0], ids[1]], not a {type(requests).__name__}")
    for i, request in enumerate(requests):
        if not isinstance(request, torch.Tensor):
            raise ValueError(f"request {i} is a {type(request).__name__}; pass token ids as a torch.long tensor")
        if request.dim() != 1:
            raise ValueError(
                f"request {i} has shape {tuple(request.shape)}; pass 1-D token ids (one request per tensor): "
                "use ids[0] or split a batch with list(ids)"
            )
        if request.dtype != torch.long:
            raise ValueError(f"request {i} has dtype {request.dtype}; token ids must be torch.long: use ids.long()")
        if len(request) == 0:
            raise ValueError(f"request {i} is empty: every request needs at least one token")
        if len(request) > largest:
            raise ValueError(f"request {i} has {len(request)} tokens; largest bucket is {largest} - add a bucket "
                             f"or truncate (tokenizer(..., truncation=True, max_length={largest}))")
        if vocab_size is not None and not 0 <= int(request.min()) <= int(request.max()) < vocab_size:
            raise ValueError(f"request {i} has token ids outside 0..{vocab_size - 1} (the model's vocabulary): "
                             "tokenize with this model's own tokenizer")


def check_masks(requests: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> None:
    """ValueError unless there is one mask per request, each the same shape as its request."""
    if len(masks) != len(requests):
        raise ValueError(f"got {len(masks)} masks for {len(requests)} requests: pass one mask per request, or none")
    for i, (request, mask) in enumerate(zip(requests, masks)):
        if not isinstance(mask, torch.Tensor) or mask.shape != request.shape:
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"mask {i} has shape {shape} but request {i} has shape {tuple(request.shape)}: "
                             "take ids and mask from the same tokenizer call")


class BucketedModel:
    """Serve requests of any length up to the largest bucket through traces of fixed shapes.

    `bm(requests)` takes a list of 1-D int64 token-id tensors and returns, per request, the model's first
    output cut to that request's length (`[len, hidden]`). Requests are routed to the smallest bucket that
    fits, right-padded (the attention mask hides the padding) and batched with the others in the call, in
    chunks of `max_batch`. The first trace is reused at every shape where `tracing.verify` finds it equal
    to eager; at a shape where it is not, the wrapper traces one module per bucket at batch `max_batch`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        buckets: Iterable[int] = (16, 32, 64, 128),
        max_batch: int = 8,
        *,
        traced: torch.jit.ScriptModule | None = None,
        tolerance: accuracy.Tolerance | None = None,
    ):
        self.buckets = tuple(sorted(set(int(b) for b in buckets)))
        config = getattr(model, "config", None)
        self.max_positions = getattr(config, "max_position_embeddings", None)
        self.vocab_size = getattr(config, "vocab_size", None)
        self.pad_id = getattr(config, "pad_token_id", None) or 0
        if not self.buckets or self.buckets[0] < 1 or max_batch < 1:
            raise ValueError(f"need at least one bucket >= 1 and max_batch >= 1; got {self.buckets}, {max_batch}")
        if self.max_positions is not None and self.buckets[-1] > self.max_positions:
            raise ValueError(f"bucket {self.buckets[-1]} exceeds the model's {self.max_positions} max positions: "
                             f"use buckets <= {self.max_positions}")
        if getattr(config, "use_return_dict", False):
            raise ValueError("the model returns dicts: load it with torchscript=True (models.load_model does)")
        self.model, self.max_batch, self.tolerance = model.eval(), max_batch, tolerance
        self.shared = traced  # the first trace, reused wherever it is verified equal to eager
        self.per_bucket: dict[int, torch.jit.ScriptModule] = {}  # bucket -> trace at [max_batch, bucket]
        self.routes: dict[tuple[int, int], str] = {}  # served shape -> "shared" or "per-bucket"

    def __call__(
        self, requests: Sequence[torch.Tensor], masks: Sequence[torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        batches = self.plan(requests)
        if masks is not None:
            check_masks(requests, masks)
        results: list[torch.Tensor] = [torch.empty(0)] * len(requests)
        for bucket, chunk in batches:
            ids, mask = pad_batch([requests[i] for i in chunk], bucket, self.pad_id)  # [n, bucket]
            if masks is not None:
                mask = pad_batch([masks[i].long() for i in chunk], bucket)[0]
            hidden = self._run(ids, mask)  # [n, bucket, hidden]
            for row, i in enumerate(chunk):
                results[i] = hidden[row, : len(requests[i])]  # [len, hidden]
        return results

    def plan(self, requests: Sequence[torch.Tensor]) -> list[tuple[int, list[int]]]:
        """The batches a call would run, after checking the requests: (bucket, request indices), at most
        `max_batch` per batch, requests grouped by the smallest bucket that fits them."""
        check_requests(requests, self.buckets[-1], self.vocab_size)
        groups: dict[int, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(bucket_for(len(request), self.buckets), []).append(i)
        return [(bucket, members[start : start + self.max_batch])
                for bucket, members in groups.items() for start in range(0, len(members), self.max_batch)]

    def _run(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """First output of the model for one padded batch [n, bucket], through a verified trace."""
        n, bucket = shape = (ids.size(0), ids.size(1))
        if shape not in self.routes:
            self.routes[shape] = self._route(ids, mask)
        if self.routes[shape] == "shared":
            with torch.no_grad():
                return self.shared(ids, mask)[0]
        rows = self.max_batch - n  # fill the batch with copies of the first row; their outputs are dropped
        ids, mask = torch.cat([ids, ids[:1].expand(rows, -1)]), torch.cat([mask, mask[:1].expand(rows, -1)])
        if bucket not in self.per_bucket:
            traced = tracing.trace(self.model, (ids, mask), tracer_warnings=False)  # verified right below
            tracing.verify(traced, self.model, [(ids, mask)], self.tolerance)  # raises if even this shape differs
            self.per_bucket[bucket] = traced
        with torch.no_grad():
            return self.per_bucket[bucket](ids, mask)[0][:n]

    def _route(self, ids: torch.Tensor, mask: torch.Tensor) -> str:
        """'shared' if the first trace (traced here if there is none yet) equals eager at this shape."""
        if self.shared is None:
            self.shared = tracing.trace(self.model, (ids, mask), tracer_warnings=False)  # verified right below
        report = tracing.verify(self.shared, self.model, [(ids, mask)], self.tolerance, raise_on_mismatch=False)
        return "shared" if report.ok else "per-bucket"

    def __repr__(self) -> str:
        shared = [shape for shape, route in sorted(self.routes.items()) if route == "shared"]
        own = [shape for shape, route in sorted(self.routes.items()) if route == "per-bucket"]
        return (f"BucketedModel(buckets={self.buckets}, max_batch={self.max_batch}): "
                f"1 shared trace serves {_label(shared)}; {len(self.per_bucket)} per-bucket traces "
                f"(batch {self.max_batch}) serve {_label(own)}")


def _label(shapes: list[tuple[int, int]]) -> str:
    """'1x16, 8x32' for [(1, 16), (8, 32)]; 'none' for []."""
    return ", ".join(f"{n}x{length}" for n, length in shapes) or "none"
