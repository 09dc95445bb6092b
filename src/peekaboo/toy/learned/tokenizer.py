"""A real CLIP BPE tokenizer whose merges spell each toy-world word as one token (other text falls back to bytes)."""

from __future__ import annotations

from peekaboo.tiny import byte_vocabulary
from peekaboo.toy.vocabulary import COLOURS, SHAPES

WORDS: tuple[str, ...] = (*COLOURS, *SHAPES)


def _merges_for(words: tuple[str, ...], vocab: dict[str, int]) -> list[tuple[str, str]]:
    """BPE merges (in rank order) that turn every word into the single token ``word</w>``.

    Each word's merges are found by tokenising it with the merges so far and joining its first two symbols until
    one remains; new merges rank after all earlier ones, so words already done keep their single token.
    """
    from transformers import CLIPTokenizer

    merges: list[tuple[str, str]] = []
    for word in words:
        while True:
            tokenizer = CLIPTokenizer(vocab=dict(vocab), merges=list(merges))
            symbols = tokenizer.tokenize(word)
            if len(symbols) == 1:
                break
            merged = symbols[0] + symbols[1]
            merges.append((symbols[0], symbols[1]))
            vocab.setdefault(merged, len(vocab))
    return merges


def toy_tokenizer(model_max_length: int = 77):
    """A ``CLIPTokenizer`` over the byte vocabulary plus one token per colour and shape word."""
    from transformers import CLIPTokenizer

    vocab = byte_vocabulary()
    merges = _merges_for(WORDS, vocab)
    return CLIPTokenizer(vocab=vocab, merges=list(merges), model_max_length=model_max_length)
