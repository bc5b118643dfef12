"""A ClipCap-style caption decoder (Mokady et al. 2021, "ClipCap: CLIP Prefix for Image Captioning",
arXiv 2111.09734): an MLP maps the CLIP image embedding E_I to ``prefix_length`` tokens, and a small
causal transformer reads [prefix; w_0 … w_{t−1}] and predicts w_t, so

    p(w | I) = Π_t softmax(W_o h_t),   h = Transformer([MLP(E_I); Emb(w_<t)])

with rotary positions over the whole sequence (prefix included). Training is teacher-forced
cross-entropy on the caption tokens; `greedy` and `beam` decode.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_genvision.nn.transformer import Transformer


class CaptionDecoder(nn.Module):
    """E_I (B, embed_dim) and token ids (B, T) → next-token logits (B, T, vocab).

    Args:
        vocab_size: tokens of the caption tokenizer.
        embed_dim: width of the image embedding E_I.
        prefix_length: tokens the image embedding becomes.
        dim: transformer width.
        depth: transformer blocks.
        heads: attention heads.
        dropout: dropout inside the blocks.
        kernels: ``auto | torch | triton``, handed to attention.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        prefix_length: int = 4,
        dim: int = 128,
        depth: int = 3,
        heads: int = 4,
        dropout: float = 0.0,
        kernels: str = "auto",
    ) -> None:
        super().__init__()
        self.vocab_size, self.prefix_length, self.dim = vocab_size, prefix_length, dim
        hidden = dim * prefix_length // 2
        self.prefix = nn.Sequential(
            nn.Linear(embed_dim, hidden), nn.Tanh(), nn.Linear(hidden, dim * prefix_length)
        )  # ClipCap's MLP mapping network
        self.embed = nn.Embedding(vocab_size, dim)
        self.transformer = Transformer(depth, dim, heads, dropout=dropout, causal=True, rope=True, kernels=kernels)
        self.head = nn.Linear(dim, vocab_size, bias=False)

    def forward(self, image_embedding: Tensor, ids: Tensor, mask: Tensor | None = None) -> Tensor:
        """Logits (B, T, vocab) where position t predicts token t + 1 of ``ids`` (B, T); ``mask``
        (B, T) is True at real tokens (padding is not attended to)."""
        b = len(ids)
        prefix = self.prefix(image_embedding).view(b, self.prefix_length, self.dim)  # (B, P, dim)
        x = torch.cat([prefix, self.embed(ids)], dim=1)  # (B, P + T, dim)
        keep = None
        if mask is not None:
            keep = torch.cat([mask.new_ones(b, self.prefix_length), mask], dim=1)  # (B, P + T)
        h = self.transformer(x, mask=keep)  # (B, P + T, dim)
        return self.head(h[:, self.prefix_length :])  # (B, T, vocab)

    @torch.no_grad()
    def greedy(self, image_embedding: Tensor, bos: int, eot: int, max_length: int) -> Tensor:
        """Greedy decoding: ids (B, ≤ max_length) starting with ``bos``; after ``eot`` a row repeats ``eot``."""
        ids = torch.full((len(image_embedding), 1), bos, dtype=torch.long, device=image_embedding.device)
        done = torch.zeros(len(ids), dtype=torch.bool, device=ids.device)
        for _ in range(max_length - 1):
            nxt = self(image_embedding, ids)[:, -1].argmax(-1)  # (B,)
            nxt = torch.where(done, torch.full_like(nxt, eot), nxt)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            done |= nxt == eot
            if bool(done.all()):
                break
        return ids

    @torch.no_grad()
    def beam(self, image_embedding: Tensor, bos: int, eot: int, max_length: int, width: int = 3) -> Tensor:
        """Beam search: for each image, the finished sequence of highest log-probability / length
        (length-normalised, so short captions are not favoured) among ``width`` beams; ids (B, T)
        padded with ``eot``."""
        b, device = len(image_embedding), image_embedding.device
        emb = image_embedding.repeat_interleave(width, dim=0)  # (B·W, E)
        ids = torch.full((b * width, 1), bos, dtype=torch.long, device=device)
        score = torch.zeros(b, width, device=device)
        score[:, 1:] = -float("inf")  # all beams start identical: keep one alive at first
        done = torch.zeros(b * width, dtype=torch.bool, device=device)
        for _ in range(max_length - 1):
            logp = self(emb, ids)[:, -1].float().log_softmax(-1)  # (B·W, V)
            logp[done] = -float("inf")
            logp[done, eot] = 0.0  # a finished beam only extends with eot, at no cost
            total = (score.view(-1, 1) + logp).view(b, width * self.vocab_size)
            score, flat = total.topk(width, dim=1)  # (B, W)
            parent = flat // self.vocab_size + torch.arange(b, device=device)[:, None] * width  # (B, W)
            token = (flat % self.vocab_size).view(-1)
            ids = torch.cat([ids[parent.view(-1)], token[:, None]], dim=1)
            done = done[parent.view(-1)] | (token == eot)
            if bool(done.all()):
                break
        lengths = ((ids != eot).sum(1) + 1).clamp(max=ids.shape[1]).view(b, width).float()
        best = (score / lengths).argmax(1) + torch.arange(b, device=device) * width
        return ids[best]


__all__ = ["CaptionDecoder"]
