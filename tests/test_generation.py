"""Traced greedy generation equals model.generate, token for token, across families; save/load; clear errors."""

import dataclasses
import json
import warnings
from collections import Counter

import pytest
import torch

from helpers import course, files, generation
from helpers.generation import models as generators
from helpers.generation import steps as decoders
from helpers.generation.rules import GreedyRules

SEQ2SEQ = ("marian", "bart", "t5")
CAUSAL = ("gpt2", "llama", "gpt_neo")
VOCAB = 300
MAX_LENGTH = 32


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and the machine is shared: no thread contention."""
    with course.threads(1):
        yield


def reference(model, ids, mask, max_new_tokens):
    with torch.no_grad():
        return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                              num_beams=1, do_sample=False)


def cases(family: str):
    """The random batches a family is tested on."""
    return generation.random_cases(6, VOCAB, seed=(SEQ2SEQ + CAUSAL).index(family))


def reachable_eos(model, family: str) -> int:
    """A token that, as EOS, would end some rows of the test batches before others (and never first)."""
    config, score = model.generation_config, Counter()
    special = {config.eos_token_id, config.pad_token_id, config.forced_bos_token_id}
    for ids, mask, new in cases(family):
        out = reference(model, ids, mask, new)[:, 1 if family in SEQ2SEQ else ids.shape[1]:].tolist()
        for token in {t for row in out for t in row} - special:
            ends = [row.index(token) if token in row else len(row) for row in out]
            score[token] += 1 <= min(ends) < max(ends)
    return score.most_common(1)[0][0]


def build(family: str):
    """A tiny model whose EOS it really produces (so stopping and pad filling are exercised)."""
    if family in SEQ2SEQ:
        model = generators.tiny_seq2seq(family, VOCAB)
    else:
        model = generators.tiny_causal_lm(family, VOCAB)
    config = model.generation_config
    eos = reachable_eos(model, family)
    config.eos_token_id = eos
    if config.forced_eos_token_id is not None:
        config.forced_eos_token_id = eos
    if family == "gpt2":
        config.pad_token_id = None  # GPT-2 has none: generate pads finished rows with EOS
    return model


@pytest.fixture(scope="module", params=SEQ2SEQ + CAUSAL)
def family_pair(request):
    model = build(request.param)
    cls = generation.TracedSeq2Seq if request.param in SEQ2SEQ else generation.TracedCausalLM
    return request.param, model, cls.from_model(model, max_length=MAX_LENGTH)


def test_equal_to_generate_token_for_token(family_pair):
    family, model, traced = family_pair
    stopped_early = 0
    for ids, mask, new in cases(family):
        expected = reference(model, ids, mask, new)
        got = traced.generate(ids, mask, new)
        assert got.shape == expected.shape and torch.equal(got, expected), (family, ids.tolist(), new)
        generated = expected[:, 1 if family in SEQ2SEQ else ids.shape[1]:]
        stopped_early += int(torch.isin(generated[:, :-1], torch.tensor(traced.rules.eos)).any())  # then padded
    assert stopped_early, f"{family}: no case had one row finish before another; the pad filling went untested"


def test_save_load_generate_equal(family_pair, tmp_path):
    family, model, traced = family_pair
    traced.save(tmp_path / "gen")
    loaded = type(traced).load(tmp_path / "gen")
    for ids, mask, new in generation.random_cases(2, VOCAB, seed=7):
        assert torch.equal(loaded.generate(ids, mask, new), traced.generate(ids, mask, new))
    settings = json.loads((tmp_path / "gen" / "generation.json").read_text())
    assert settings["kind"] == traced.KIND and settings["max_length"] == MAX_LENGTH


def test_save_refuses_to_overwrite_and_load_checks_kind(family_pair, tmp_path):
    family, model, traced = family_pair
    traced.save(tmp_path / "gen")
    before = (tmp_path / "gen" / "generation.json").read_bytes()
    with pytest.raises(FileExistsError, match="already exist in .*choose another name"):
        traced.save(tmp_path / "gen")
    assert (tmp_path / "gen" / "generation.json").read_bytes() == before
    other = generation.TracedCausalLM if family in SEQ2SEQ else generation.TracedSeq2Seq
    with pytest.raises(ValueError, match=f"holds a '{traced.KIND}' generator"):
        other.load(tmp_path / "gen")
    with pytest.raises(FileNotFoundError, match=r"make it with generator\.save\(folder\)"):
        type(traced).load(tmp_path / "empty")


def test_generation_json_is_checked_and_validated(family_pair, tmp_path):
    family, model, traced = family_pair
    traced.save(tmp_path / "gen")
    settings = tmp_path / "gen" / "generation.json"
    original = settings.read_text()
    settings.write_text(original.replace('"max_length": 32', '"max_length": 64'))
    with pytest.raises(files.ModelFileError, match="changed after it was saved"):
        type(traced).load(tmp_path / "gen")
    for broken in ("{not json", json.dumps({"kind": traced.KIND})):  # re-manifested, so only validation stops it
        settings.write_text(broken)
        manifest = json.loads(files.manifest_path(settings).read_text())
        manifest.update(bytes=settings.stat().st_size, sha256=files.sha256(settings))
        files.manifest_path(settings).write_text(json.dumps(manifest))
        with pytest.raises(files.ModelFileError, match="not valid JSON|has no max_length, rules"):
            type(traced).load(tmp_path / "gen")


@pytest.mark.parametrize("family", ["marian", "gpt2"])
def test_from_model_works_on_torchscript_true_models_and_equals_generate(family):
    build = generators.tiny_seq2seq if family == "marian" else generators.tiny_causal_lm
    model = build(family, VOCAB, torchscript=True)
    assert model.config.torchscript, "the flag makes forward return tuples"
    cls = generation.TracedSeq2Seq if family == "marian" else generation.TracedCausalLM
    traced = cls.from_model(model, max_length=MAX_LENGTH)
    cases = generation.random_cases(4, VOCAB, seed=11)
    assert generation.agreement(traced, cases, generation.references(model, cases)) == (4, 4)


@pytest.fixture(scope="module")
def marian():
    model = generators.tiny_seq2seq("marian", VOCAB)
    return model, generation.TracedSeq2Seq.from_model(model, max_length=16, max_source_length=12)


@pytest.fixture(scope="module")
def gpt2():
    model = generators.tiny_causal_lm("gpt2", VOCAB)
    return model, generation.TracedCausalLM.from_model(model, max_length=16)


def test_lengths_past_the_traced_maximum_are_clear_errors(marian, gpt2):
    ids, mask = torch.ones(2, 13, dtype=torch.long), torch.ones(2, 13, dtype=torch.long)
    with pytest.raises(ValueError, match="input has 13 tokens; the encoder was traced at max_source_length=12"):
        marian[1].generate(ids, mask, 4)
    mask[:, 12:] = 0  # trailing padding past the traced length is dropped, not refused
    assert torch.equal(marian[1].generate(ids, mask, 4), reference(marian[0], ids, mask, 4))
    with pytest.raises(ValueError, match="needs 17 decoder positions; .* max_length=16: ask for at most 15"):
        marian[1].generate(ids[:, :4], mask[:, :4], 16)
    with pytest.raises(ValueError, match="prompt of 13 tokens \\+ max_new_tokens=4 needs 17 positions"):
        gpt2[1].generate(ids, torch.ones_like(ids), 4)


def test_lengths_past_the_models_positions_are_clear_errors():
    model = generators.tiny_seq2seq("marian", VOCAB)  # 64 positions
    with pytest.raises(ValueError, match="max_length=65 is beyond the model's 64 positions"):
        generation.TracedSeq2Seq.from_model(model, max_length=65)
    with pytest.raises(ValueError, match="max_source_length=80 is beyond the model's 64 positions"):
        generation.TracedSeq2Seq.from_model(model, max_length=16, max_source_length=80)
    with pytest.raises(ValueError, match="max_length=100 is beyond the model's 64 positions"):
        generation.TracedCausalLM.from_model(generators.tiny_causal_lm("gpt2", VOCAB), max_length=100)
    with pytest.raises(ValueError, match="max_length=1: trace with at least 2 positions"):
        generation.TracedSeq2Seq.from_model(model, max_length=1)


def test_short_traces_work_at_their_limits():
    model = generators.tiny_causal_lm("llama", VOCAB)
    traced = generation.TracedCausalLM.from_model(model, max_length=4)
    ids, mask = torch.tensor([[9, 8, 7]]), torch.ones(1, 3, dtype=torch.long)
    assert torch.equal(traced.generate(ids, mask, 1), reference(model, ids, mask, 1))


def test_the_raw_decoder_past_its_positions_fails_obscurely():
    """What the clear error above saves you from: Marian's position table has 64 rows."""
    model = generators.tiny_seq2seq("marian", VOCAB)
    ids = torch.ones(1, 65, dtype=torch.long)
    with pytest.raises(IndexError, match="index out of range in self"):
        decoders.Seq2SeqStep(model)(ids, torch.zeros(1, 4, 32), torch.ones(1, 4, dtype=torch.long),
                                     torch.tensor([0]))


def test_bad_inputs_and_wrong_kinds_are_clear_errors(marian, gpt2):
    ids = torch.ones(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="2-D LongTensor"):
        gpt2[1].generate(ids.float(), ids, 2)
    with pytest.raises(ValueError, match="must match input_ids"):
        gpt2[1].generate(ids, ids[:, :3], 2)
    with pytest.raises(ValueError, match="at least 1 new token"):
        marian[1].generate(ids, ids, 0)
    with pytest.raises(ValueError, match="use TracedCausalLM"):
        generation.TracedSeq2Seq.from_model(gpt2[0])
    with pytest.raises(ValueError, match="use TracedSeq2Seq"):
        generation.TracedCausalLM.from_model(marian[0])


def test_unsupported_generation_settings_are_refused_not_ignored():
    model = generators.tiny_causal_lm("gpt2", VOCAB)
    model.generation_config.repetition_penalty = 1.3
    with pytest.raises(NotImplementedError, match="repetition_penalty=1.3, which this greedy loop does not"):
        generation.TracedCausalLM.from_model(model, max_length=16)


def test_min_new_tokens_and_multi_token_bad_words_follow_generate(gpt2):
    model, traced = gpt2
    config = model.generation_config
    ids, mask = torch.tensor([[7, 8, 9]]), torch.ones(1, 3, dtype=torch.long)
    free = reference(model, ids, mask, 8)[0, 3:].tolist()
    config.bad_words_ids, config.min_new_tokens, config.eos_token_id = [free[:2], [free[3]]], 3, free[1]
    try:
        rules = GreedyRules.from_config(config, encoder_decoder=False)
        traced = generation.TracedCausalLM(traced.modules, rules, traced.settings)
        assert torch.equal(traced.generate(ids, mask, 8), reference(model, ids, mask, 8))
    finally:
        config.bad_words_ids, config.min_new_tokens, config.eos_token_id = None, None, 0


def test_tracing_gpt2_with_transformers_mask_fails_and_the_recipe_works():
    model = generators.tiny_causal_lm("gpt2", VOCAB)

    class Naive(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, ids, mask):
            return self.model(input_ids=ids, attention_mask=mask, use_cache=False, return_dict=False)[0]

    ids = torch.ones(2, 8, dtype=torch.long)
    with warnings.catch_warnings(), pytest.raises(RuntimeError, match="unordered_map::at"):
        warnings.simplefilter("ignore")
        torch.jit.trace(Naive(), (ids, torch.ones_like(ids)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(decoders.CausalStep(model), (ids, torch.ones_like(ids), torch.tensor([3])))
    assert traced(ids, torch.ones_like(ids), torch.tensor([3])).shape == (2, VOCAB)


def test_position_ids_skip_padding_and_the_mask_is_causal():
    mask = torch.tensor([[0, 0, 1, 1, 1]])
    assert decoders.position_ids(mask).tolist() == [[1, 1, 0, 1, 2]]
    blocked = decoders.causal_mask(mask) < 0  # [1, 1, 5, 5]
    assert blocked[0, 0, 4].tolist() == [True, True, False, False, False]
    assert blocked[0, 0, 2].tolist() == [True, True, False, True, True]
    assert torch.isfinite(decoders.causal_mask(mask)).all()


def test_each_marian_trap_breaks_equality(marian):
    """Drop forced EOS, or the final_logits_bias, and the loop stops matching generate()."""
    model, traced = marian
    cases = generation.random_cases(8, VOCAB, seed=3, max_new_tokens=10)
    expected = generation.references(model, cases)
    assert generation.agreement(traced, cases, expected) == (8, 8)
    no_forced_eos = dataclasses.replace(traced.rules, forced_eos=[])
    assert generation.agreement(generation.TracedSeq2Seq(traced.modules, no_forced_eos, traced.settings),
                                cases, expected)[0] < 8
    states = traced.modules["encoder.pt"](*traced.examples()["encoder.pt"])
    example = (torch.zeros(2, 16, dtype=torch.long), states.expand(2, -1, -1), torch.ones(2, 12, dtype=torch.long),
               torch.tensor([1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        no_bias = torch.jit.trace(decoders.Seq2SeqStep(model, with_bias=False), example)
    modules = {**traced.modules, "decoder_step.pt": no_bias}
    assert generation.agreement(generation.TracedSeq2Seq(modules, traced.rules, traced.settings),
                                cases, expected)[0] < 8


def test_gpt2_without_position_ids_breaks_on_left_padding(gpt2):
    model, traced = gpt2
    cases = generation.random_cases(8, VOCAB, seed=4, max_new_tokens=4)[::2]  # the left-padded ones
    expected = generation.references(model, cases)
    assert generation.agreement(traced, cases, expected) == (4, 4)
    example = (torch.zeros(2, 16, dtype=torch.long), torch.ones(2, 16, dtype=torch.long), torch.tensor([1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        no_positions = torch.jit.trace(decoders.CausalStep(model, with_positions=False), example)
    variant = generation.TracedCausalLM({"step.pt": no_positions}, traced.rules, traced.settings)
    assert generation.agreement(variant, cases, expected)[0] < 4


def test_load_generator_is_tiny_by_default_and_loads_a_local_checkpoint_by_choice(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("COURSE_HUB", raising=False)
    model, tokenizer = generators.load_generator("Helsinki-NLP/opus-mt-en-de")
    assert "(Helsinki-NLP/opus-mt-en-de needs COURSE_HUB=1)" in capsys.readouterr().out
    monkeypatch.setenv("COURSE_HUB", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    generators.load_generator("Helsinki-NLP/opus-mt-en-de")
    assert "is not cached and the hub is unreachable" in capsys.readouterr().out
    assert type(model).__name__ == "MarianMTModel" and model.generation_config.forced_eos_token_id == tokenizer.sep_token_id
    gpt = generators.tiny_causal_lm("gpt2", VOCAB)
    gpt.save_pretrained(tmp_path / "gpt")
    tokenizer.save_pretrained(tmp_path / "gpt")  # a stand-in for a real checkpoint folder
    loaded, loaded_tokenizer = generators.load_generator(str(tmp_path / "gpt"), fallback="gpt2")
    assert "(a local folder)" in capsys.readouterr().out
    assert loaded_tokenizer.padding_side == "left" and torch.equal(loaded.lm_head.weight, gpt.lm_head.weight)
    with pytest.raises(ValueError, match="fallback='opt' is not one of"):
        generators.load_generator("facebook/opt-125m", fallback="opt")
