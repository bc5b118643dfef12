"""The one decoding loop of the platform's autoregressive models — the token prior, the captioner, and later
DALL-E 2's transformer decoder and DiTAR's chunk loop: p(s) = Π_i p(s_i | prefix, s_<i), one token at a time.

A network that decodes (``AutoregressiveNet``) is a causal transformer read as

    [prefix (B, P, D); embed_tokens(s_0); embed_tokens(s_1); …]  →  logits of the next token (B, V)

where the prefix is its condition as embeddings: a class start token is a prefix of length 1, ClipCap's
mapped image embedding one of length P. Each step feeds only the new token's embedding and reuses the keys
and values of everything before it (a KV cache per block). Choosing the next token:

- sampling: s_i ~ softmax(ℓ / T), restricted to the k most likely tokens with top-k;
- greedy: s_i = argmax ℓ;
- beam search (``beam``): the ``width`` most likely sequences, ranked at the end by log-probability per token;
- classifier-free guidance on logits (Ho & Salimans 2022; Gafni et al. 2022): ℓ = ℓ_∅ + s·(ℓ_y − ℓ_∅), the
  conditional and the null prefix run as one batch of 2B.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor


class AutoregressiveNet(Protocol):
    """What ``decode`` and ``beam`` need of a network."""

    def new_cache(self) -> list: ...

    def embed_tokens(self, tokens: Tensor, first: int) -> Tensor:
        """Embeddings (B, n, D) of ``tokens`` (B, n), the first of which is token ``first`` of the sequence."""
        ...

    def step(self, x: Tensor, cache: list) -> Tensor:
        """Logits (B, V) of the token after the embeddings ``x`` (B, n, D), extending ``cache``."""
        ...


def sample_logits(
    logits: Tensor, temperature: float = 1.0, top_k: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """One token per row of logits (B, V): s ~ softmax(logits / T) over the top-k tokens (all if None)."""
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    gdev = generator.device if generator is not None else probs.device
    return torch.multinomial(probs.to(gdev), 1, generator=generator).to(probs.device).squeeze(1)


@torch.no_grad()
def decode(
    net: AutoregressiveNet,
    prefix: Tensor,
    length: int,
    *,
    given: Tensor | None = None,
    null_prefix: Tensor | None = None,
    guidance: float = 1.0,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    eot: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Up to ``length`` tokens (B, n) after ``prefix`` (B, P, D) and the ``given`` tokens (B, n0) that follow it.

    With ``null_prefix`` and guidance s ≠ 1 both prefixes run as one batch and the logits are guided. A row
    that has produced ``eot`` repeats it, and decoding stops early once every row has.
    """
    b = len(prefix)
    guided = null_prefix is not None and guidance != 1.0
    x = torch.cat([prefix, null_prefix]) if guided else prefix
    first = 0
    if given is not None:
        x = torch.cat([x, _twice(net.embed_tokens(given, 0), guided)], dim=1)
        first = given.shape[1]
    cache = net.new_cache()
    tokens = torch.empty(b, length, dtype=torch.long, device=prefix.device)
    done = torch.zeros(b, dtype=torch.bool, device=prefix.device)
    for i in range(length):
        logits = net.step(x, cache)  # (B or 2B, V)
        if guided:
            c, u = logits.chunk(2)
            logits = u + guidance * (c - u)
        nxt = logits.argmax(-1) if greedy else sample_logits(logits, temperature, top_k, generator)
        if eot is not None:
            nxt = torch.where(done, torch.full_like(nxt, eot), nxt)
            done |= nxt == eot
        tokens[:, i] = nxt
        if eot is not None and bool(done.all()):
            return tokens[:, : i + 1]
        x = _twice(net.embed_tokens(nxt[:, None], first + i), guided)
    return tokens


def _twice(x: Tensor, guided: bool) -> Tensor:
    return torch.cat([x, x]) if guided else x


@torch.no_grad()
def beam(
    net: AutoregressiveNet, prefix: Tensor, length: int, *, given: Tensor | None = None, eot: int, width: int = 3
) -> Tensor:
    """Beam search: per row of ``prefix`` (B, P, D), the finished sequence of highest log-probability per token
    (length-normalised, so short sequences are not favoured) among ``width`` beams; tokens (B, n ≤ length) after
    the ``given`` ones, padded with ``eot``. A finished beam only extends with ``eot``, at no cost."""
    b, device = len(prefix), prefix.device
    x = prefix.repeat_interleave(width, dim=0)  # (B·W, P, D)
    first = 0
    if given is not None:
        x = torch.cat([x, net.embed_tokens(given.repeat_interleave(width, dim=0), 0)], dim=1)
        first = given.shape[1]
    cache = net.new_cache()
    tokens = torch.empty(b * width, 0, dtype=torch.long, device=device)
    score = torch.zeros(b, width, device=device)
    score[:, 1:] = -float("inf")  # all beams start identical: keep one alive at first
    done = torch.zeros(b * width, dtype=torch.bool, device=device)
    for i in range(length):
        logp = net.step(x, cache).float().log_softmax(-1)  # (B·W, V)
        vocab = logp.shape[-1]
        logp[done] = -float("inf")
        logp[done, eot] = 0.0
        total = (score.view(-1, 1) + logp).view(b, width * vocab)
        score, flat = total.topk(width, dim=1)  # (B, W)
        parent = (flat // vocab + torch.arange(b, device=device)[:, None] * width).view(-1)  # (B·W,)
        token = (flat % vocab).view(-1)
        tokens = torch.cat([tokens[parent], token[:, None]], dim=1)
        done = done[parent] | (token == eot)
        if bool(done.all()):
            break
        for block in cache:
            block.reorder(parent)
        x = net.embed_tokens(token[:, None], first + i)
    given_count = 0 if given is None else given.shape[1]  # a beam's length: given tokens, then its own up to eot
    lengths = ((tokens != eot).sum(1) + given_count + 1).clamp(max=tokens.shape[1] + given_count)
    lengths = lengths.view(b, width).float()
    best = (score / lengths).argmax(1) + torch.arange(b, device=device) * width
    return tokens[best]
