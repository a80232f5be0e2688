import time

import pytest
import torch
import transformers

from helpers import models


def test_offline_falls_back_to_shipped_minilm_quickly(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    model, tokenizer = models.load_model("bert-base-uncased")
    assert time.perf_counter() - start < 10, "offline fallback must not sit through hub retries"
    line = capsys.readouterr().out
    assert "all-MiniLM-L6-v2" in line and "unreachable" in line
    assert model.config.hidden_size == 384 and not model.training
    assert tokenizer("hello world")["input_ids"] == [101, 7592, 2088, 102]


def test_hub_unreachable_when_offline_mode_is_set(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert models.hub_reachable() is False


def test_local_folder_loads_without_hub(capsys):
    model, _ = models.load_model(models.shipped_model_path(), task="masked-lm", torchscript=False)
    assert "a local folder" in capsys.readouterr().out
    assert isinstance(model, transformers.BertForMaskedLM)


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="task='seq2seq' is not one of"):
        models.load_model(models.SHIPPED_NAME, task="seq2seq")


def test_transformers_5_with_flag_is_refused(monkeypatch):
    # Patch the module object helpers.models holds: importing LongformerModel makes transformers replace its own
    # entry in sys.modules, so a later `import transformers` may see another object.
    monkeypatch.setattr(models.transformers, "__version__", "5.24.0")
    with pytest.raises(RuntimeError, match="has no torchscript=True.*transformers==4.57.6"):
        models.load_model(models.SHIPPED_NAME)


def test_fresh_head_is_the_same_on_every_load_and_keeps_global_rng():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, _ = models.load_model(models.SHIPPED_NAME, task="masked-lm")
    assert torch.equal(torch.rand(1), expected_next), "load_model must not disturb the global RNG"
    b, _ = models.load_model(models.SHIPPED_NAME, task="masked-lm")
    assert torch.equal(a.cls.predictions.transform.dense.weight, b.cls.predictions.transform.dense.weight)


def test_tied_pairs_in_real_minilm_mlm():
    tied, _ = models.load_model(models.SHIPPED_NAME, task="masked-lm", torchscript=False)
    assert ("bert.embeddings.word_embeddings.weight", "cls.predictions.decoder.weight") in models.tied_parameters(tied)
    untied, _ = models.load_model(models.SHIPPED_NAME, task="masked-lm", torchscript=True)
    names = [name for pair in models.tied_parameters(untied) for name in pair]
    assert "cls.predictions.decoder.weight" not in names
    assert torch.equal(untied.cls.predictions.decoder.weight, untied.bert.embeddings.word_embeddings.weight)


@pytest.mark.parametrize(
    "family, pair",
    [
        ("distilbert", ("distilbert.embeddings.word_embeddings.weight", "vocab_projector.weight")),
        ("albert", ("albert.embeddings.word_embeddings.weight", "predictions.decoder.weight")),
        ("roberta", ("lm_head.decoder.weight", "roberta.embeddings.word_embeddings.weight")),
    ],
)
def test_tied_pairs_in_tiny_mlms(family, pair):
    assert tuple(sorted(pair)) in [tuple(sorted(p)) for p in models.tied_parameters(models.tiny_model(family))]
    untied = models.tiny_model(family, torchscript=True)
    assert tuple(sorted(pair)) not in [tuple(sorted(p)) for p in models.tied_parameters(untied)]


def test_base_model_has_nothing_tied(minilm):
    model, _ = minilm
    assert models.tied_parameters(model) == []


def test_folder_without_tokenizer_names_the_fix(tmp_path):
    models.tiny_model("bert").save_pretrained(tmp_path)
    with pytest.raises(OSError, match="tokenizer.save_pretrained"):
        models.load_model(tmp_path, task="masked-lm", torchscript=False)


def test_mean_pool_matches_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    model, tokenizer = minilm
    sentences = ["A man is eating food.", "Someone is having a meal.", "The sky is blue today."]
    inputs = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = models.mean_pool(model(inputs["input_ids"], inputs["attention_mask"])[0], inputs["attention_mask"])
    reference = SentenceTransformer(str(models.shipped_model_path()), device="cpu").encode(sentences, convert_to_tensor=True)
    assert torch.allclose(ours, reference, atol=1e-5)

