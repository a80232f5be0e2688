"""helpers.shapes (dummy inputs, random ids, the corpus, the bucketed wrapper), notebook 02's toys and padding."""

import re
import tomllib
import warnings
from pathlib import Path

import pytest
import torch

from helpers import accuracy, models, padding, shapes, tracing


def random_requests(generator, count, max_len, vocab=(1000, 2000)):
    """`count` 1-D int64 requests of random lengths 1..max_len."""
    lengths = torch.randint(1, max_len + 1, (count,), generator=generator).tolist()
    return [torch.randint(*vocab, (n,), generator=generator) for n in lengths]


def eager_outputs(model, requests, masks=None):
    """The model's first output per request, run alone at its exact length: the reference."""
    masks = masks or [torch.ones_like(r) for r in requests]
    with torch.no_grad():
        return [model(r[None], m[None])[0][0] for r, m in zip(requests, masks)]


def assert_matches_eager(bm, model, requests, masks=None):
    got = bm(requests, masks)
    for request, out, expected in zip(requests, got, eager_outputs(model, requests, masks)):
        assert out.shape == (len(request), expected.shape[-1])
        assert accuracy.close(out, expected), f"request of {len(request)} tokens differs"


@pytest.fixture(scope="module")
def tiny():
    return {family: models.tiny_model(family, task="base", torchscript=True) for family in ("albert", "distilbert")}


def test_bucketed_minilm_equals_eager_at_many_lengths_and_batches(minilm):
    model, _ = minilm
    generator = torch.Generator().manual_seed(0)
    bm = shapes.BucketedModel(model)
    edges = [torch.randint(1000, 2000, (n,), generator=generator) for n in (1, 16, 17, 128)]
    for count in (1, 5, 11):  # 11 requests: at least one bucket needs two batches of max_batch=8
        assert_matches_eager(bm, model, edges + random_requests(generator, count, 128))
    assert set(bm.routes.values()) == {"shared"}, "MiniLM's trace generalises: one trace serves every shape"


@pytest.mark.parametrize("family", ["albert", "distilbert"])
def test_bucketed_tiny_models_equal_eager_property(tiny, family):
    model = tiny[family]
    generator = torch.Generator().manual_seed(1)
    wrappers = [shapes.BucketedModel(model, buckets=(8, 16, 32, 64, 128), max_batch=b) for b in (1, 2, 3, 8)]
    for trial in range(12):
        bm = wrappers[trial % len(wrappers)]
        assert_matches_eager(bm, model, random_requests(generator, 1 + trial * 2, 128, vocab=(5, 1000)))


def test_requests_go_to_smallest_bucket_in_chunks_of_max_batch(tiny):
    bm = shapes.BucketedModel(tiny["albert"], buckets=(16, 32), max_batch=4)
    requests = [torch.full((n,), 7) for n in (16, 3, 17, 5, 9, 32, 1, 2, 4)]
    assert bm.plan(requests) == [(16, [0, 1, 3, 4]), (16, [6, 7, 8]), (32, [2, 5])]
    bm(requests)
    assert set(bm.routes) == {(4, 16), (3, 16), (2, 32)}


def test_user_masks_are_respected(tiny):
    model = tiny["distilbert"]
    requests = [torch.arange(10, 22), torch.arange(30, 35)]
    masks = [torch.tensor([1] * 9 + [0] * 3), torch.ones(5, dtype=torch.long)]
    assert_matches_eager(shapes.BucketedModel(model), model, requests, masks)


@pytest.mark.parametrize("name", ["toy", "longformer"])
def test_bucketed_serves_models_whose_trace_breaks(name):
    model = models.CausalToy() if name == "toy" else models.tiny_longformer()
    raw = tracing.trace(model, shapes.random_inputs(model, 1, 7 if name == "toy" else 8), tracer_warnings=False)
    other = shapes.random_inputs(model, 2, 12)
    assert not tracing.verify(raw, model, [other], raise_on_mismatch=False).ok, "the raw trace must not generalise"
    bm = shapes.BucketedModel(model, buckets=(16, 64), max_batch=3)
    generator = torch.Generator().manual_seed(2)
    assert_matches_eager(bm, model, random_requests(generator, 9, 64, vocab=(5, model.config.vocab_size)))
    assert "per-bucket" in bm.routes.values() and bm.per_bucket, "shapes the first trace fails need their own trace"


def test_bucketed_funnel_equals_eager_on_the_padded_batch():
    """Funnel's trace breaks at other lengths, and padding changes Funnel's own eager outputs (its pooling mixes
    neighbouring positions), so the wrapper can only promise eager-on-the-padded-batch numbers for it."""
    model = models.tiny_funnel()
    requests = [torch.arange(5, 5 + n) for n in (9, 14, 20, 30)]
    bm = shapes.BucketedModel(model, buckets=(16, 32), max_batch=2)
    got = bm(requests)
    assert "per-bucket" in bm.routes.values()
    for bucket, chunk in bm.plan(requests):
        ids, mask = shapes.pad_batch([requests[i] for i in chunk], bucket)
        with torch.no_grad():
            expected = model(ids, mask)[0]
        for row, i in enumerate(chunk):
            assert (got[i] - expected[row, : len(requests[i])]).abs().max() <= 1e-5
    padded_vs_alone = (eager_outputs(model, requests[:1])[0] - got[0]).abs().max().item()
    assert padded_vs_alone > 0.1, "Funnel's outputs depend on padding: notebook 02 says so"


@pytest.mark.parametrize(
    "bad, message",
    [
        ([torch.ones(129, dtype=torch.long)], "request 0 has 129 tokens; largest bucket is 128 - add a bucket or truncate"),
        ([torch.ones(3, dtype=torch.long), torch.ones(5, dtype=torch.int32)], r"request 1 has dtype torch.int32; .*ids.long\(\)"),
        ([torch.ones(5)], r"request 0 has dtype torch.float32; token ids must be torch.long"),
        ([torch.ones(1, 7, dtype=torch.long)], r"request 0 has shape \(1, 7\); pass 1-D token ids"),
        ([torch.ones(0, dtype=torch.long)], "request 0 is empty"),
        (torch.ones(2, 7, dtype=torch.long), "pass a list of 1-D token-id tensors"),
        ([[1, 2, 3]], "request 0 is a list; pass token ids as a torch.long tensor"),
        ([torch.tensor([5, 1000])], r"token ids outside 0..999 .*own tokenizer"),
    ],
)
def test_bad_requests_get_clear_errors(tiny, bad, message):
    with pytest.raises(ValueError, match=message):
        shapes.BucketedModel(tiny["albert"])(bad)


def test_bad_masks_and_settings_get_clear_errors(tiny):
    bm = shapes.BucketedModel(tiny["albert"])
    ids = [torch.ones(7, dtype=torch.long)]
    with pytest.raises(ValueError, match=r"mask 0 has shape \(5,\) but request 0 has shape \(7,\).*same tokenizer call"):
        bm(ids, [torch.ones(5, dtype=torch.long)])
    with pytest.raises(ValueError, match="got 2 masks for 1 requests"):
        bm(ids, [torch.ones(7), torch.ones(7)])
    with pytest.raises(ValueError, match="bucket 256 exceeds the model's 128 max positions: use buckets <= 128"):
        shapes.BucketedModel(tiny["albert"], buckets=(64, 256))
    with pytest.raises(ValueError, match="need at least one bucket >= 1 and max_batch >= 1"):
        shapes.BucketedModel(tiny["albert"], max_batch=0)
    with pytest.raises(ValueError, match="returns dicts: load it with torchscript=True"):
        shapes.BucketedModel(models.tiny_model("albert", task="base", torchscript=False))


def test_toy_reproduces_the_classic_error_text_exactly():
    toy = models.CausalToy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = tracing.trace(toy, shapes.random_inputs(toy, 1, 7))
    assert any("Converting a tensor to a Python integer" in str(w.message) for w in caught), "the warning predicts it"
    with pytest.raises(RuntimeError, match=re.escape(models.CLASSIC_ERROR)):
        traced(*shapes.random_inputs(toy, 1, 3))
    assert models.CLASSIC_ERROR == (
        "The expanded size of the tensor (3) must match the existing size (7) at non-singleton dimension 2"
    )


def test_dummy_inputs_from_texts_and_shapes(minilm):
    _, tokenizer = minilm
    ids, mask = shapes.dummy_inputs(tokenizer, ["Short.", "A somewhat longer sentence than that."])
    assert ids.shape == mask.shape and ids.dtype == torch.long and mask[0].sum() < mask[1].sum() == ids.shape[1]
    assert shapes.dummy_inputs(tokenizer, "One text.", length=32)[0].shape == (1, 32)
    ids, mask = shapes.dummy_inputs(tokenizer, (3, 20))
    assert ids.shape == (3, 20) and bool(mask.all())
    assert ids[0, 0] == tokenizer.cls_token_id and ids[0, -1] == tokenizer.sep_token_id
    assert tokenizer.decode(ids[0, 1:-1]).startswith("torchscript records the operations")
    with pytest.raises(ValueError, match="exceeds the tokenizer's model_max_length 512: use seq <= 512"):
        shapes.dummy_inputs(tokenizer, (1, 513))
    with pytest.raises(ValueError, match=r"too small: need batch >= 1 and seq > 2"):
        shapes.dummy_inputs(tokenizer, (1, 2))
    with pytest.raises(ValueError, match="a \\(batch, seq\\) tuple of ints"):
        shapes.dummy_inputs(tokenizer, [1, 2])


def test_corpus_ships_a_realistic_length_mix(minilm):
    _, tokenizer = minilm
    texts = shapes.load_corpus()
    assert len(texts) >= 300 and len(set(texts)) == len(texts)
    lengths = [len(tokenizer(t)["input_ids"]) for t in texts]
    assert max(lengths) <= 128, "every request fits the largest bucket"
    per_bucket = {b: sum(shapes.bucket_for(n, (16, 32, 64, 128)) == b for n in lengths) for b in (16, 32, 64, 128)}
    assert all(count >= 10 for count in per_bucket.values()), per_bucket
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "data/*.txt" in pyproject["tool"]["setuptools"]["package-data"]["helpers"], "ship it in the wheel"


def test_policy_accounting():
    lengths = [5, 16, 17, 100]
    assert padding.tokens_computed(lengths, padding.policy_buckets("pad to 512")) == 4 * 512
    assert padding.tokens_computed(lengths, padding.policy_buckets("buckets")) == 16 + 16 + 32 + 128
    assert padding.tokens_computed(lengths, padding.policy_buckets("exact length")) == sum(lengths)
    assert [len(g) for g in padding.arrivals(list(range(19)), 8)] == [8, 8, 3]
    with pytest.raises(ValueError, match="unknown policy 'pad to 64'"):
        padding.policy_buckets("pad to 64")


def test_machines_table_puts_every_machine_side_by_side():
    def result(machine, medians):
        rows = [{"policy": p, "shapes": 1, "tokens": 100, "padding": 0.5, "median": m, "vs_exact": m / medians[-1]}
                for p, m in zip(padding.POLICIES, medians)]
        return {"provenance": {"machine": machine, "threads": 2, "date": "2026-01-01"}, "policies": rows}

    table = padding.machines_table({"cpu-a": result("CPU A", [8.0, 4.0, 1.0, 2.0]),
                                    "cpu-b": result("CPU B", [9.0, 3.0, 1.5, 3.0])})
    lines = table.splitlines()
    assert lines[:2] == ["cpu-a: CPU A, 2 threads, 2026-01-01", "cpu-b: CPU B, 2 threads, 2026-01-01"]
    assert lines[2].split()[-2:] == ["cpu-a", "cpu-b"] and len(lines) == 3 + len(padding.POLICIES)
    assert re.search(r"^pad to 512 .* 8\.0 s, 4\.00x +9\.0 s, 3\.00x$", lines[3])
    assert "make bench" in padding.machines_table({})


def test_time_policies_times_every_policy_each_round(tiny):
    model = tiny["distilbert"]
    generator = torch.Generator().manual_seed(3)
    groups = padding.arrivals(random_requests(generator, 12, 100, vocab=(5, 1000)), 4)
    runs = padding.time_policies(padding.servers(model, max_batch=4, policies=("pad to 128", "exact length")),
                                 groups, rounds=3)
    assert [r.name for r in runs.rows] == ["pad to 128", "exact length"] and runs.baseline == "exact length"
    assert all(len(r.timing.runs) == 3 and min(r.timing.runs) > 0 for r in runs.rows)
    rows = padding.table(runs, [len(r) for g in groups for r in g], limit=128)
    assert rows[1]["vs_exact"] == 1.0 and rows[1]["padding"] == 0 and rows[0]["padding"] > 0.3
    assert "pad to 128" in padding.format_table(rows)


def test_raw_verdict_names_each_outcome():
    toy = models.CausalToy()
    traced = tracing.trace(toy, shapes.random_inputs(toy, 1, 7), tracer_warnings=False)
    assert padding.raw_verdict(traced, toy, 1, 7).startswith("matches eager")
    assert padding.raw_verdict(traced, toy, 1, 3).startswith("raises RuntimeError: The expanded size of the tensor (3)")
    assert padding.raw_verdict(traced, toy, 1, 200) == "cannot run: the model has 128 positions"
    funnel = models.tiny_funnel()
    traced = tracing.trace(funnel, shapes.random_inputs(funnel, 1, 7), tracer_warnings=False)
    assert padding.raw_verdict(traced, funnel, 1, 12).startswith("WRONG numbers, silently")


def test_a_given_trace_is_reused_only_where_verified():
    toy = models.CausalToy()
    traced_at_7 = tracing.trace(toy, shapes.random_inputs(toy, 1, 7), tracer_warnings=False)
    bm = shapes.BucketedModel(toy, buckets=(7, 16), max_batch=2, traced=traced_at_7)
    assert_matches_eager(bm, toy, [torch.arange(1, 8), torch.arange(1, 6), torch.arange(1, 13)])
    assert bm.routes == {(2, 7): "shared", (1, 16): "per-bucket"}


def test_a_model_that_cannot_be_traced_even_at_one_shape_is_refused():
    class Noisy(models.CausalToy):
        def forward(self, input_ids, attention_mask):
            return (super().forward(input_ids, attention_mask)[0] + torch.rand(1),)

    with pytest.raises(tracing.TraceMismatchError, match="disagrees with the model"):
        shapes.BucketedModel(Noisy())([torch.arange(1, 8)])


def test_random_ids_are_seeded_in_range_and_pad_the_last_row_on_request():
    before = torch.random.get_rng_state()
    ids, mask = shapes.random_ids(50, 3, 8, seed=4, low=5, pad_last=True)
    assert torch.equal(torch.random.get_rng_state(), before), "the global RNG is left alone"
    assert ids.shape == mask.shape == (3, 8) and 5 <= int(ids.min()) and int(ids.max()) < 50
    assert mask[:2].all() and mask[2].tolist() == [1] * 5 + [0] * 3
    assert torch.equal(ids, shapes.random_ids(50, 3, 8, seed=4, low=5)[0]), "same seed, same ids"
