"""Vector quantisation with a learned codebook (VQ-VAE, van den Oord et al. 2017, arXiv 1711.00937).

For an encoder vector z and a codebook {e_k}, k = 1..K:

    (1) k* = argmin_k ‖z − e_k‖²                          nearest code
    (2) z_q = z + sg[e_k* − z]                            straight-through: forward e_k*, ∂z_q/∂z = I
    (3) L = ‖sg[z] − e_k*‖² + β‖z − sg[e_k*]‖²            codebook loss + commitment loss

Options, each off by default:

- EMA codebook (van den Oord et al. 2017 app. A.1; Razavi et al. 2019, arXiv 1906.00446) replaces the
  codebook loss: with n_k the batch count of code k and s_k the sum of the vectors assigned to it,

    (4) N_k ← γ N_k + (1 − γ) n_k,    m_k ← γ m_k + (1 − γ) s_k
    (5) Ñ_k = (N_k + ε) / (n + K ε) · n,   n = Σ_k N_k     (Laplace smoothing: no division by 0)
    (6) e_k = m_k / Ñ_k

- k-means initialisation: the first training batch seeds the codebook with a few Lloyd iterations.
- dead-code restart: codes not chosen in the last ``usage_window`` training passes are replaced by
  vectors drawn from the current (most recent) batch of encoder outputs.
- ViT-VQGAN (Yu et al. 2021, arXiv 2110.04627): ``lookup_dim`` projects z to a low-dimensional lookup
  space (linear in/out), ``cosine`` l2-normalises both z and the codes, so (1) ranks by cosine.

All codebook state (the EMA statistics, the initialised flag, the usage buffer, the RNG) changes only in
training mode and is registered as buffers/extra state: a checkpoint resumes bitwise. Under
torch.distributed the EMA statistics and usage counts are summed over ranks and k-means / restarted
codes are broadcast from rank 0, so every rank keeps the same codebook.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_genvision.methods.quantizers.base import Quantizer
from lit_genvision.methods.quantizers.distributed import all_reduce_, broadcast_


def nearest_code(x: Tensor, codebook: Tensor) -> Tensor:
    """(1): argmin_k ‖x − e_k‖² = argmin_k (‖e_k‖² − 2 x·e_k), for x (M, d), codebook (K, d) → (M,)."""
    distance = codebook.pow(2).sum(1) - 2 * x @ codebook.t()  # (M, K); ‖x‖² is the same for every k
    return distance.argmin(dim=1)


def kmeans(x: Tensor, k: int, iters: int, generator: torch.Generator, cosine: bool = False) -> Tensor:
    """Lloyd's k-means on x (M, d) → centroids (k, d), seeded with k distinct vectors of x (with
    replacement if M < k); an empty cluster keeps its previous centroid; ``cosine`` renormalises."""
    m = x.shape[0]
    pick = torch.randperm(m, generator=generator)[:k] if m >= k else torch.randint(0, m, (k,), generator=generator)
    centroids = x[pick.to(x.device)].clone()
    for _ in range(iters):
        assign = nearest_code(x, centroids)
        counts = torch.bincount(assign, minlength=k)
        sums = F.one_hot(assign, k).to(x.dtype).t() @ x  # (k, d)
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None].to(x.dtype), centroids)
        if cosine:
            centroids = F.normalize(centroids, dim=1)
    return centroids


class VectorQuantizer(Quantizer):
    """VQ-VAE quantizer, equations (1)–(6) above.

    Args:
        dim: channels of z.
        codebook_size: K.
        beta: β, the commitment weight (0.25 in the paper).
        ema: update the codebook by (4)–(6) instead of the codebook loss.
        decay: γ of the EMA.
        eps: ε of the Laplace smoothing.
        kmeans_init: seed the codebook from the first training batch by k-means.
        kmeans_iters: Lloyd iterations of that initialisation.
        cosine: l2-normalise z and the codes (ViT-VQGAN).
        lookup_dim: quantise in a ``lookup_dim``-dimensional space reached by a linear projection
            (and left by another); None: quantise z itself.
        restart_dead: re-seed codes unused for ``usage_window`` training passes.
        usage_window: the window, in training passes, of utilisation, dead codes and restart.
        channel_dim: the channel axis of z (1: (B, C, H, W); −1: (B, N, C)).
        seed: seed of the generator behind the codebook's initial values, k-means and restarts.
    """

    codebook: Tensor
    initialised: Tensor
    cluster_size: Tensor
    embed_sum: Tensor

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        beta: float = 0.25,
        ema: bool = False,
        decay: float = 0.99,
        eps: float = 1e-5,
        kmeans_init: bool = False,
        kmeans_iters: int = 10,
        cosine: bool = False,
        lookup_dim: int | None = None,
        restart_dead: bool = False,
        usage_window: int = 100,
        channel_dim: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(dim, codebook_size, channel_dim=channel_dim, usage_window=usage_window, seed=seed)
        self.beta, self.ema, self.decay, self.eps = beta, ema, decay, eps
        self.kmeans_iters, self.cosine, self.restart_dead = kmeans_iters, cosine, restart_dead
        self.lookup_dim = lookup_dim or dim
        self.project_in: nn.Module = nn.Linear(dim, lookup_dim) if lookup_dim else nn.Identity()
        self.project_out: nn.Module = nn.Linear(lookup_dim, dim) if lookup_dim else nn.Identity()
        codebook = torch.randn(codebook_size, self.lookup_dim, generator=self.generator)
        if cosine:
            codebook = F.normalize(codebook, dim=1)
        if ema:
            self.register_buffer("codebook", codebook)
            self.register_buffer("cluster_size", torch.ones(codebook_size))  # N_k; ones keep (6) ≈ e_k at start
            self.register_buffer("embed_sum", codebook.clone())  # m_k
        else:
            self.codebook = nn.Parameter(codebook)
        self.register_buffer("initialised", torch.tensor(not kmeans_init))

    def lookup_codes(self) -> Tensor:
        """The codebook (K, lookup_dim) as used by (1): l2-normalised under ``cosine``."""
        return F.normalize(self.codebook, dim=1) if self.cosine and not self.ema else self.codebook

    def to_lookup(self, x: Tensor) -> Tensor:
        """z → the lookup space: the in-projection, then l2-normalisation under ``cosine``."""
        h = self.project_in(x)
        return F.normalize(h, dim=1) if self.cosine else h

    def quantize_flat(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        h = self.to_lookup(x)  # (M, d)
        if self.training and not bool(self.initialised):
            self._kmeans_init(h.detach())
        codes = self.lookup_codes()  # (K, d)
        indices = nearest_code(h.detach(), codes.detach())  # (1)
        e = codes[indices]  # (M, d)
        losses: dict[str, Tensor] = {}
        if not self.ema:
            losses["codebook"] = F.mse_loss(e, h.detach())  # ‖sg[z] − e‖², mean over elements
        losses["commitment"] = self.beta * F.mse_loss(h, e.detach())  # β‖z − sg[e]‖²
        h_q = h + (e - h).detach()  # (2)
        if self.training and self.ema:
            self._ema_update(h.detach(), indices)
        return self.project_out(h_q), indices, losses

    def codes_flat(self, indices: Tensor) -> Tensor:
        return self.project_out(self.lookup_codes()[indices])

    @torch.no_grad()
    def _kmeans_init(self, h: Tensor) -> None:
        centroids = broadcast_(kmeans(h, self.codebook_size, self.kmeans_iters, self.generator, self.cosine))
        self.codebook.data.copy_(centroids)
        if self.ema:
            self.embed_sum.copy_(centroids)
            self.cluster_size.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _ema_update(self, h: Tensor, indices: Tensor) -> None:
        one_hot = F.one_hot(indices, self.codebook_size).to(h.dtype)  # (M, K); a matmul is deterministic
        n = all_reduce_(one_hot.sum(0))  # n_k
        s = all_reduce_(one_hot.t() @ h)  # s_k = Σ_{i: k*_i = k} z_i
        self.cluster_size.mul_(self.decay).add_(n, alpha=1 - self.decay)  # (4)
        self.embed_sum.mul_(self.decay).add_(s, alpha=1 - self.decay)  # (4)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.codebook_size * self.eps) * total  # (5)
        codebook = self.embed_sum / smoothed[:, None]  # (6)
        self.codebook.copy_(F.normalize(codebook, dim=1) if self.cosine else codebook)

    @torch.no_grad()
    def after_update(self, x: Tensor, indices: Tensor) -> None:
        """Dead-code restart: every code dead over the window becomes a vector of the current batch
        (drawn without replacement when the batch has enough vectors), and counts as just used."""
        if not self.restart_dead:
            return
        assert self.usage is not None
        dead = self.usage.dead_mask()
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        h = self.to_lookup(x)
        m = h.shape[0]
        if m >= n_dead:
            pick = torch.randperm(m, generator=self.generator)[:n_dead]
        else:
            pick = torch.randint(0, m, (n_dead,), generator=self.generator)
        fresh = broadcast_(h[pick.to(h.device)].contiguous())
        self.codebook.data[dead] = fresh
        if self.ema:
            self.embed_sum[dead] = fresh
            self.cluster_size[dead] = 1.0
        self.usage.last_used[dead] = self.usage.step - 1
