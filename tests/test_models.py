import os
import subprocess
import sys

import pytest
import torch
import transformers

from helpers import accuracy, models


def test_offline_falls_back_to_shipped_minilm_without_touching_the_network(monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("offline fallback must not try the network (transformers would retry for 25 s)")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models.socket, "create_connection", no_network)
    model, tokenizer = models.load_model("bert-base-uncased")
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
    assert accuracy.close(ours, reference)



CACHE_CHECK = """
import os
from helpers import models
model, _ = models.load_model()
print("default", model.config.hidden_size)
os.environ["COURSE_HUB"] = "1"
model, _ = models.load_model()
print("switch", model.config.hidden_size)
def missing():
    raise ImportError("the shipped MiniLM is missing")
models.shipped_model_path = missing
model, _ = models.load_model("bert-base-uncased", task="masked-lm")
print("masked-lm", model.config.hidden_size)
"""


def test_default_is_the_shipped_minilm_whatever_the_cache_holds(tmp_path):
    """A learner's Hugging Face cache holding a (small) BERT under the name bert-base-uncased changes nothing
    unless COURSE_HUB=1; a hub checkpoint with an MLM head loads without the shipped wheel."""
    snapshot = tmp_path / "hub" / "models--bert-base-uncased" / "snapshots" / ("0" * 40)
    models.tiny_model("bert", task="base", hidden_size=48, num_attention_heads=2).save_pretrained(snapshot)
    transformers.AutoTokenizer.from_pretrained(models.shipped_model_path()).save_pretrained(snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "COURSE_HUB": "0"}
    done = subprocess.run([sys.executable, "-c", CACHE_CHECK], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "default 384" in lines and "switch 48" in lines and "masked-lm 48" in lines
    assert "bert-base-uncased (from the local hub cache)" in done.stdout


def test_tiny_model_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    first = models.tiny_model("bert")
    assert torch.equal(torch.rand(1), expected)
    assert torch.equal(first.bert.embeddings.word_embeddings.weight,
                       models.tiny_model("bert").bert.embeddings.word_embeddings.weight)


def test_train_steps_untied_copies_drift_about_two_lr_per_step_tied_stay_equal():
    words = {"input_ids": torch.tensor([[5, 17, 42, 9, 3]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    tied = models.train_steps(models.tiny_model("bert"), words, steps=3, lr=1e-3)
    untied = models.train_steps(models.tiny_model("bert", torchscript=True), words, steps=3, lr=1e-3)
    assert tied == [0.0, 0.0, 0.0]
    assert all(1.5e-3 < gap / step < 2.5e-3 for step, gap in enumerate(untied, 1)), untied
