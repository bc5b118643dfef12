"""A byte-level BPE tokenizer trained on captions, wrapping Hugging Face ``tokenizers``.

Byte-level BPE (Sennrich et al. 2016; byte-level as in GPT-2, which CLIP's text tower also uses,
Radford et al. 2021, arXiv 2103.00020): every text maps to tokens (no unknown token), merges are
learnt from the captions of the training set. Each text is encoded as

    <|startoftext|> t₁ … t_k <|endoftext|> <|pad|> …

padded to the longest text of the batch and truncated to ``max_length`` tokens in all, the
``<|endoftext|>`` always kept last (the text tower pools its features there). The whole tokenizer
(vocabulary, merges, template, truncation) is one JSON string: loading it runs no code.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from torch import Tensor

PAD, SOT, EOT = "<|pad|>", "<|startoftext|>", "<|endoftext|>"
SPECIAL_TOKENS = (PAD, SOT, EOT)  # ids 0, 1, 2 in a trained tokenizer


class BPETokenizer:
    """Byte-level BPE: texts → (ids (B, M) int64, mask (B, M) bool True = real token).

    Build one with `train` (deterministic: the same texts give the same vocabulary), `from_json`
    or `load`; keep one with `to_json` or `save`.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        for token in SPECIAL_TOKENS:
            if tokenizer.token_to_id(token) is None:
                raise ValueError(f"a BPETokenizer needs the special token {token!r}, which this tokenizer lacks.")
        if tokenizer.truncation is None:
            raise ValueError("a BPETokenizer needs truncation enabled (its max_length); build it with train().")
        self._tok = tokenizer

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def train(cls, texts: list[str], vocab_size: int = 1000, max_length: int = 32) -> BPETokenizer:
        """Learn byte-level BPE merges from ``texts`` (vocab ≤ ``vocab_size``, texts capped at ``max_length``)."""
        if max_length < 2:
            raise ValueError(f"max_length must leave room for <|startoftext|> and <|endoftext|>, got {max_length}.")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),  # ids 0, 1, 2 in this order
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: no unknown token
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer)
        sot, eot = tok.token_to_id(SOT), tok.token_to_id(EOT)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{SOT} $A {EOT}", special_tokens=[(SOT, sot), (EOT, eot)]
        )
        # truncation counts the two specials the template adds, so <|endoftext|> stays last
        tok.enable_truncation(max_length=max_length)
        tok.enable_padding(pad_id=tok.token_to_id(PAD), pad_token=PAD)  # to the longest in the batch
        return cls(tok)

    @classmethod
    def from_json(cls, s: str) -> BPETokenizer:
        """Rebuild from `to_json`'s string (plain data: no code runs)."""
        return cls(Tokenizer.from_str(s))

    def to_json(self) -> str:
        """The ``tokenizers`` JSON of vocabulary, merges, template, truncation and padding."""
        return self._tok.to_str()

    def save(self, path: str | Path) -> None:
        """Write `to_json` to ``path``."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a tokenizer written by `save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    # -- properties ----------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of token ids, specials included."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def max_length(self) -> int:
        """Most tokens per text, <|startoftext|> and <|endoftext|> included."""
        return int(self._tok.truncation["max_length"])

    @property
    def pad_id(self) -> int:
        return int(self._tok.token_to_id(PAD))

    @property
    def sot_id(self) -> int:
        return int(self._tok.token_to_id(SOT))

    @property
    def eot_id(self) -> int:
        return int(self._tok.token_to_id(EOT))

    # -- use -----------------------------------------------------------------------------------

    def __call__(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """texts (B,) → ids (B, M) int64 and mask (B, M) bool (True = real token), M = longest ≤ max_length."""
        if isinstance(texts, str):
            raise TypeError("BPETokenizer takes a list of texts, not one string; wrap it as [text].")
        encodings = self._tok.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.int64).reshape(len(texts), -1)  # (B, M)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.bool).reshape(ids.shape)  # (B, M)
        return ids, mask

    def decode(self, ids: Tensor | list[list[int]]) -> list[str]:
        """ids (B, M) → texts, specials (start, end, padding) dropped."""
        rows = ids.tolist() if isinstance(ids, Tensor) else [list(r) for r in ids]
        return self._tok.decode_batch(rows, skip_special_tokens=True)

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BPETokenizer):
            return NotImplemented
        return json.loads(self.to_json()) == json.loads(other.to_json())


def build_bpe_from_texts(texts: list[str], vocab_size: int = 1000, max_length: int = 32) -> BPETokenizer:
    """`BPETokenizer.train` as a function (for configs and the fit-start hook of a LightningModule)."""
    return BPETokenizer.train(texts, vocab_size=vocab_size, max_length=max_length)


__all__ = ["BPETokenizer", "EOT", "PAD", "SOT", "build_bpe_from_texts"]
