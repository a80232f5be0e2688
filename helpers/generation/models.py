"""Text-generation models for the course: tiny ones built from configs, real ones by choice.

Introduced in notebook 07. No translation or GPT weights ship with the course, so `tiny_seq2seq` and
`tiny_causal_lm` build small randomly initialised models that keep each family's generation config (start token,
forced EOS, banned pad...). `load_generator` builds the tiny one by default, so every learner sees the same
tokens; with COURSE_HUB=1 (`helpers.models.use_hub`) it loads the real checkpoint, such as
Helsinki-NLP/opus-mt-en-de, when it is cached or the hub answers, and says in one line which it loaded.
"""

from __future__ import annotations


import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from helpers import course, models

TRANSLATOR = "Helsinki-NLP/opus-mt-en-de"

LAYERS = dict(encoder_layers=2, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2)
BART_LIKE = dict(d_model=32, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
                 tie_word_embeddings=False, **LAYERS)
SIZES = {
    "marian": dict(init_std=0.15, scale_embedding=True, **BART_LIKE),  # opus-mt scales its embeddings
    "bart": dict(init_std=0.1, **BART_LIKE),
    "t5": dict(d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
               initializer_factor=5.0),
    "gpt2": dict(n_embd=32, n_layer=2, n_head=2, n_positions=64, initializer_range=0.3),
    "llama": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                  intermediate_size=64, max_position_embeddings=64, initializer_range=0.3),
    "gpt_neo": dict(hidden_size=32, num_layers=2, num_heads=2, attention_types=[[["global", "local"], 1]],
                    window_size=16, max_position_embeddings=64, initializer_range=0.3),
}
"""Per family: small sizes (hidden 32, 2 layers) that keep every mechanism of the real architecture. With the
default initialisation a model this small repeats one token whatever its input; the larger initial weights
(and an untied LM head for Marian and BART) make its greedy output depend on the input, so that checks
comparing two implementations token for token can catch a mistake."""
CAUSAL = ("gpt2", "llama", "gpt_neo")
FALLBACK = {"marian": dict(d_model=64, init_std=0.1, eos_bias=2.7)}
"""`load_generator`'s tiny stand-ins, when they differ from SIZES: with the 30,522-word MiniLM vocabulary a
hidden size of 32 repeats one word, and the EOS bias makes the seeded model end about half of notebook 07's
sentences within 16 tokens, as a trained translator would."""


def special_tokens(family: str, vocab_size: int, pad: int | None = None, eos: int | None = None) -> dict:
    """Each family's token-id conventions, as its published checkpoints set them."""
    if family == "marian":  # opus-mt: pad is the last id, starts decoding and is banned; EOS is forced
        pad = vocab_size - 1 if pad is None else pad
        eos = 0 if eos is None else eos
        return dict(pad_token_id=pad, eos_token_id=eos, decoder_start_token_id=pad, forced_eos_token_id=eos,
                    bad_words_ids=[[pad]])
    if family == "bart":  # facebook/bart-large: start with </s>, force <s> first and </s> last
        return dict(bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2,
                    forced_bos_token_id=0, forced_eos_token_id=2)
    if family == "t5":
        return dict(pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    eos = 0 if eos is None else eos
    return dict(bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)  # GPT-2 style: no pad unless given


def _seeded(build, config):
    """Build a model from seed 0 without touching the global RNG; eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build.from_config(config).eval()


def tiny_seq2seq(family: str = "marian", vocab_size: int = 1000, pad: int | None = None, eos: int | None = None,
                 output_bias: float = 0.1, eos_bias: float = 0.0, **overrides) -> PreTrainedModel:
    """A small random encoder-decoder ("marian", "bart", "t5") with its family's generation config.

    Marian and BART get a random `final_logits_bias` (std `output_bias`), as a converted opus-mt checkpoint
    carries Marian's learned output bias where a fresh model has zeros; `eos_bias` is added to the EOS
    entry so a random model ends some sentences early, as a trained one does.
    """
    config = AutoConfig.for_model(family, vocab_size=vocab_size, **{**SIZES[family],
                                  **special_tokens(family, vocab_size, pad, eos), **overrides})
    model = _seeded(AutoModelForSeq2SeqLM, config)
    if hasattr(model, "final_logits_bias"):
        bias = torch.randn(model.final_logits_bias.shape, generator=torch.Generator().manual_seed(1))
        model.final_logits_bias.copy_(bias * output_bias)
        model.final_logits_bias[0, config.eos_token_id] += eos_bias
    return model


def tiny_causal_lm(family: str = "gpt2", vocab_size: int = 1000, pad: int | None = None, eos: int | None = None,
                   **overrides) -> PreTrainedModel:
    """A small random decoder-only model ("gpt2", "llama", "gpt_neo") with GPT-2-style special tokens."""
    config = AutoConfig.for_model(family, vocab_size=vocab_size, **{**SIZES[family],
                                  **special_tokens(family, vocab_size, pad, eos), **overrides})
    return _seeded(AutoModelForCausalLM, config)


def shipped_tokenizer(padding_side: str = "right") -> PreTrainedTokenizerBase:
    """The shipped all-MiniLM-L6-v2 WordPiece tokenizer: real words for the tiny models' token ids."""
    tokenizer = AutoTokenizer.from_pretrained(models.shipped_model_path(), local_files_only=True)
    tokenizer.padding_side = padding_side
    tokenizer.model_input_names = ["input_ids", "attention_mask"]  # generate() takes no token_type_ids
    return tokenizer


def tiny_stand_in(family: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A tiny random `family` model on the shipped MiniLM tokenizer ([PAD] pads and starts, [SEP] ends)."""
    causal = family in CAUSAL
    tokenizer = shipped_tokenizer("left" if causal else "right")
    build = tiny_causal_lm if causal else tiny_seq2seq
    model = build(family, tokenizer.vocab_size, pad=tokenizer.pad_token_id, eos=tokenizer.sep_token_id,
                  **FALLBACK.get(family, {}))
    return model, tokenizer


def from_checkpoint(source: str, local: bool) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A real checkpoint and its tokenizer, in eval mode; decoder-only ones pad on the left, as generate expects."""
    with course.transformers_quiet():
        config = AutoConfig.from_pretrained(source, local_files_only=local)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        model = auto.from_pretrained(source, local_files_only=local).eval()
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
    if not config.is_encoder_decoder:
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:  # GPT-2 has none: pad with EOS, as generate() does
            tokenizer.pad_token = tokenizer.eos_token
            model.generation_config.pad_token_id = tokenizer.eos_token_id
    return model, tokenizer


def load_generator(name: str = TRANSLATOR, fallback: str = "marian"
                   ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer): a tiny random `fallback` model, or with COURSE_HUB=1 the real checkpoint `name` when
    it is cached or the hub answers (else the tiny one, saying why).

    The tiny stand-in's weights are random, so its outputs are not translations; its MiniLM tokenizer makes
    its token ids read as words. Prints one line saying which was loaded.
    """
    if fallback not in SIZES:
        raise ValueError(f"fallback={fallback!r} is not one of {sorted(SIZES)}")
    found = models.hub_source(name) if models.use_hub() else None
    if found is None:
        model, tokenizer = tiny_stand_in(fallback)
        why = "is not cached and the hub is unreachable" if models.use_hub() else f"needs {models.HUB_SWITCH}=1"
        print(f"loaded a tiny random {type(model).__name__} ({model.num_parameters():,} parameters) with the "
              f"shipped MiniLM tokenizer ({name} {why})")
        return model, tokenizer
    model, tokenizer = from_checkpoint(*found[:2])
    print(f"loaded {name} ({found[2]}): {type(model).__name__}, {model.num_parameters():,} parameters")
    return model, tokenizer
