"""Text encoders behind one interface: texts in, `TextEncoding` (tokens, mask, pooled) out.

Every network that reads text (CLIP, the captioner, latent diffusion's cross-attention, the DALL-E 2
prior) takes a `TextEncoder` and calls ``encode(texts)``:

    tokens (B, M, dim)        per-token features, for cross-attention
    mask   (B, M) bool        True = real token (the key-padding convention of `nn.ops.attention`)
    pooled (B, pooled_dim)    one vector per text, for contrastive losses and global conditioning

on the module's device. Three implementations:

- `CLIPTextTower`: a causal transformer trained from scratch on the dataset's captions (CLIP,
  Radford et al. 2021, arXiv 2103.00020, §2.4), pooled at the ``<|endoftext|>`` token.
- `HFTextEncoder`: a frozen (or fine-tuned) pretrained Hugging Face encoder, e.g. all-MiniLM-L6-v2,
  loaded offline from a local directory or the local HF cache.
- `LearnedTextEmbedding`: a bag of learned token embeddings, mean-pooled (tests, baseline).

Tokenizer flow of the from-scratch encoders (`CLIPTextTower`, `LearnedTextEmbedding`): the BPE
tokenizer is part of the module's state (``get_extra_state``: the tokenizer JSON as a uint8 tensor),
so a checkpoint is self-contained and loads with ``torch.load(weights_only=True)``. Build the
module with ``tokenizer=None`` when none exists yet; the LightningModule then trains one on the
training captions at fit start (``encoder.set_tokenizer(BPETokenizer.train(captions, encoder.vocab_size,
encoder.max_length))``). Rebuilding from a checkpoint: construct with ``tokenizer=None`` and the same
sizes, then ``load_state_dict`` restores the tokenizer with the weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from lit_genvision.nn.text_tokenizer import BPETokenizer, build_bpe_from_texts
from lit_genvision.nn.transformer import Transformer


class TextEncoding(NamedTuple):
    """The output of every `TextEncoder`."""

    tokens: Tensor  # (B, M, dim) per-token features
    mask: Tensor  # (B, M) bool, True = real token (keep)
    pooled: Tensor  # (B, pooled_dim) one vector per text


class TextEncoder(nn.Module):
    """Base class: ``encode(texts) -> TextEncoding``; ``dim`` is the token width, ``pooled_dim`` the pooled one."""

    dim: int
    pooled_dim: int

    def encode(self, texts: list[str]) -> TextEncoding:
        """texts (B,) → `TextEncoding` on the module's device."""
        raise NotImplementedError

    def forward(self, texts: list[str]) -> TextEncoding:
        """Same as `encode`."""
        return self.encode(texts)

    @property
    def device(self) -> torch.device:
        """The device of the module's parameters (CPU for a module without any)."""
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")


def masked_mean(tokens: Tensor, mask: Tensor) -> Tensor:
    """Σ_i m_i·x_i / max(Σ_i m_i, ε): tokens (B, M, D), mask (B, M) → (B, D) (sentence-transformers' pooling)."""
    m = mask.to(tokens.dtype)[..., None]  # (B, M, 1)
    return (tokens * m).sum(1) / m.sum(1).clamp_min(1e-9)  # (B, D)


def last_token(tokens: Tensor, mask: Tensor) -> Tensor:
    """Features at each sequence's last real token: tokens (B, M, D), mask (B, M) right-padded → (B, D).

    With the BPE template that token is ``<|endoftext|>``: CLIP's pooled text feature (arXiv 2103.00020, §2.4).
    """
    last = mask.long().sum(1).sub(1).clamp_min(0)  # (B,) index of the last kept token
    return tokens[torch.arange(tokens.shape[0], device=tokens.device), last]  # (B, D)


# ----------------------------------------------------------------------------------------------
# Encoders that carry their own BPE tokenizer
# ----------------------------------------------------------------------------------------------


def _as_tokenizer(tokenizer: BPETokenizer | str | Path | None) -> BPETokenizer | None:
    """A tokenizer, a path to a saved tokenizer JSON, or None."""
    if tokenizer is None or isinstance(tokenizer, BPETokenizer):
        return tokenizer
    path = Path(tokenizer)
    if not path.is_file():
        raise FileNotFoundError(
            f"tokenizer file {str(path)!r} does not exist; pass a JSON written by BPETokenizer.save."
        )
    return BPETokenizer.load(path)


class _BPETextEncoder(TextEncoder):
    """Holds a `BPETokenizer` in the module state (extra state: a uint8 tensor of its UTF-8 JSON)."""

    def __init__(self, tokenizer: BPETokenizer | str | Path | None, vocab_size: int, max_length: int) -> None:
        super().__init__()
        self.vocab_size, self.max_length = vocab_size, max_length
        self._tokenizer: BPETokenizer | None = None
        self._pending = _as_tokenizer(tokenizer)  # set after the subclass has built its embedding

    def _init_tokenizer(self) -> None:
        if self._pending is not None:
            self.set_tokenizer(self._pending)
        del self._pending

    @property
    def tokenizer(self) -> BPETokenizer | None:
        """The BPE tokenizer, or None until `set_tokenizer` or `load_state_dict` gives one."""
        return self._tokenizer

    def set_tokenizer(self, tokenizer: BPETokenizer | str | Path) -> None:
        """Use ``tokenizer`` (or the tokenizer JSON at that path); its ids must fit the embedding."""
        tok = _as_tokenizer(tokenizer)
        if tok.vocab_size > self.vocab_size:
            raise ValueError(
                f"the tokenizer has {tok.vocab_size} tokens but the embedding only {self.vocab_size} rows; "
                f"build the encoder with vocab_size >= {tok.vocab_size}."
            )
        if tok.max_length > self.max_length:
            raise ValueError(
                f"the tokenizer keeps up to {tok.max_length} tokens but the encoder only {self.max_length}; "
                f"train the tokenizer with max_length <= {self.max_length}."
            )
        self._tokenizer = tok

    def get_extra_state(self) -> Tensor:
        """The tokenizer JSON as a uint8 tensor of UTF-8 bytes (empty without a tokenizer)."""
        if self._tokenizer is None:
            return torch.empty(0, dtype=torch.uint8)
        return torch.frombuffer(bytearray(self._tokenizer.to_json().encode("utf-8")), dtype=torch.uint8)

    def set_extra_state(self, state: Tensor) -> None:
        """Restore the tokenizer from `get_extra_state`'s tensor (an empty one leaves it unset)."""
        if state.numel():
            self.set_tokenizer(BPETokenizer.from_json(state.cpu().numpy().tobytes().decode("utf-8")))

    def tokenize(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """texts → ids (B, M) int64, mask (B, M) bool on the module's device."""
        if self._tokenizer is None:
            raise RuntimeError(
                f"{type(self).__name__} has no tokenizer yet; call set_tokenizer(BPETokenizer.train(captions)) "
                "or load a checkpoint's state dict first."
            )
        ids, mask = self._tokenizer(texts)
        return ids.to(self.device), mask.to(self.device)


class CLIPTextTower(_BPETextEncoder):
    """CLIP's text tower (Radford et al. 2021, arXiv 2103.00020, §2.4): a causal transformer over BPE tokens.

    x = E[ids] + P[:M]  →  `Transformer` (pre-LN, causal, final LayerNorm)  →  tokens (B, M, dim);
    pooled = W · tokens[b, eot_b] with eot_b the position of ``<|endoftext|>`` (the last real token) and
    W a bias-free (dim → embed_dim) projection.

    Args:
        tokenizer: a `BPETokenizer`, a path to its saved JSON, or None (set later with `set_tokenizer`,
            or restored by `load_state_dict`); stored in the module's state either way.
        vocab_size: rows of the token embedding (≥ the tokenizer's vocabulary).
        max_length: rows of the learned positional embedding (≥ the tokenizer's max_length).
        dim, depth, heads: width, number of blocks and heads of the transformer.
        embed_dim: width of the pooled output (the joint embedding space).
        kernels: ``auto | torch | triton``, handed to the attention.
    """

    def __init__(
        self,
        tokenizer: BPETokenizer | str | None = None,
        vocab_size: int = 1000,
        max_length: int = 32,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
        embed_dim: int = 64,
        kernels: str = "auto",
    ) -> None:
        super().__init__(tokenizer, vocab_size, max_length)
        self.dim, self.pooled_dim = dim, embed_dim
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.positional_embedding = nn.Parameter(torch.empty(max_length, dim))
        self.transformer = Transformer(depth, dim, heads, causal=True, kernels=kernels)
        self.text_projection = nn.Linear(dim, embed_dim, bias=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)  # CLIP's initialisation
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection.weight, std=dim**-0.5)
        self._init_tokenizer()

    def encode_ids(self, ids: Tensor, mask: Tensor) -> TextEncoding:
        """ids (B, M) int64, mask (B, M) bool → `TextEncoding` (for callers that tokenised already)."""
        m = ids.shape[1]
        x = self.token_embedding(ids) + self.positional_embedding[:m]  # (B, M, D)
        tokens = self.transformer(x, mask=mask)  # (B, M, D) causal, final LayerNorm inside
        pooled = self.text_projection(last_token(tokens, mask))  # (B, embed_dim) at <|endoftext|>
        return TextEncoding(tokens, mask, pooled)

    def encode(self, texts: list[str]) -> TextEncoding:
        """texts (B,) → tokens (B, M, dim), mask (B, M), pooled (B, embed_dim)."""
        return self.encode_ids(*self.tokenize(texts))


class LearnedTextEmbedding(_BPETextEncoder):
    """Bag of learned token embeddings: tokens = E[ids] (B, M, dim), pooled = their masked mean (B, dim).

    A baseline and a cheap encoder for tests; the tokenizer is stored as in `CLIPTextTower`.
    """

    def __init__(
        self,
        tokenizer: BPETokenizer | str | None = None,
        vocab_size: int = 1000,
        max_length: int = 32,
        dim: int = 64,
    ) -> None:
        super().__init__(tokenizer, vocab_size, max_length)
        self.dim = self.pooled_dim = dim
        self.embedding = nn.Embedding(vocab_size, dim)
        self._init_tokenizer()

    def encode(self, texts: list[str]) -> TextEncoding:
        """texts (B,) → tokens (B, M, dim), mask (B, M), pooled (B, dim)."""
        ids, mask = self.tokenize(texts)
        tokens = self.embedding(ids)  # (B, M, D)
        return TextEncoding(tokens, mask, masked_mean(tokens, mask))


# ----------------------------------------------------------------------------------------------
# Pretrained Hugging Face encoders
# ----------------------------------------------------------------------------------------------

ALLOW_DOWNLOADS_ENV = "LIT_GENVISION_ALLOW_DOWNLOADS"
POOLINGS = ("mean", "cls", "eot")


class HFTextEncoder(TextEncoder):
    """A pretrained Hugging Face text encoder (``AutoTokenizer`` + ``AutoModel``), frozen unless ``trainable``.

    Loading is offline and runs no code: a local directory loads with ``local_files_only=True``; a hub
    name loads from the local HF cache only (downloads only when the environment sets
    ``LIT_GENVISION_ALLOW_DOWNLOADS=1``); weights are safetensors; ``trust_remote_code=False``.

    Args:
        name_or_path: a local directory (config.json, model.safetensors, tokenizer files) or a hub name.
        max_length: texts are truncated to this many tokens.
        pooling: ``mean`` (masked mean over tokens: sentence-transformers' choice for MiniLM),
            ``cls`` (the first token, BERT) or ``eot`` (the last real token, CLIP arXiv 2103.00020).
        trainable: fine-tune the weights; otherwise requires_grad is False and the model stays in eval mode.
    """

    def __init__(self, name_or_path: str, max_length: int = 77, pooling: str = "mean", trainable: bool = False) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}.")
        self.name_or_path, self.max_length = str(name_or_path), max_length
        self.pooling, self.trainable = pooling, trainable
        self.hf_tokenizer, self.model = _load_hf(self.name_or_path)
        self.dim = self.pooled_dim = int(self.model.config.hidden_size)
        if not trainable:
            self.model.requires_grad_(False)
            self.model.eval()

    def train(self, mode: bool = True) -> HFTextEncoder:
        """Switch train/eval mode; a frozen encoder's model stays in eval (no dropout)."""
        super().train(mode)
        if not self.trainable:
            self.model.eval()
        return self

    def encode(self, texts: list[str]) -> TextEncoding:
        """texts (B,) → tokens (B, M, hidden), mask (B, M), pooled (B, hidden)."""
        batch = self.hf_tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            tokens = self.model(**batch).last_hidden_state  # (B, M, hidden)
        mask = batch["attention_mask"].bool()  # (B, M)
        if self.pooling == "mean":
            pooled = masked_mean(tokens, mask)  # (B, hidden)
        elif self.pooling == "cls":
            pooled = tokens[:, 0]  # (B, hidden)
        else:
            pooled = last_token(tokens, mask)  # (B, hidden)
        return TextEncoding(tokens, mask, pooled)


def _load_hf(name_or_path: str) -> tuple[object, nn.Module]:
    """AutoTokenizer and AutoModel from a local directory or the local HF cache; one-sentence errors."""
    from transformers import AutoModel, AutoTokenizer  # heavy: import only when used

    local = Path(name_or_path).is_dir()
    local_only = local or os.environ.get(ALLOW_DOWNLOADS_ENV) != "1"
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_only, trust_remote_code=False)
        model = AutoModel.from_pretrained(
            name_or_path, local_files_only=local_only, use_safetensors=True, trust_remote_code=False
        )
    except (OSError, ValueError) as err:  # transformers' multi-line messages; hub-id validation is a ValueError
        if local:
            msg = (
                f"Hugging Face model directory {name_or_path!r} could not be loaded ({type(err).__name__}); "
                "it must hold config.json, model.safetensors and the tokenizer files."
            )
        elif local_only:
            msg = (
                f"Hugging Face model {name_or_path!r} is not available offline; download it once with network "
                f"access (or set {ALLOW_DOWNLOADS_ENV}=1) or pass a local directory (config.json, weights, "
                "tokenizer files) as the path."
            )
        else:
            msg = (
                f"Hugging Face model {name_or_path!r} could not be downloaded ({type(err).__name__}); check the "
                "name and the network, or pass a local directory (config.json, weights, tokenizer files) as the path."
            )
        raise FileNotFoundError(msg) from err
    return tokenizer, model


__all__ = [
    "BPETokenizer",
    "CLIPTextTower",
    "HFTextEncoder",
    "LearnedTextEmbedding",
    "TextEncoder",
    "TextEncoding",
    "build_bpe_from_texts",
    "last_token",
    "masked_mean",
]
