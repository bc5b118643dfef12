"""Residual vector quantisation (SoundStream, Zeghidour et al. 2021, arXiv 2107.03312), the lecture's
recursion over N codebooks C_1..C_N:

    (1) r_0 = x
    (2) q_i = Quantize(r_{i−1}, C_i)
    (3) r_i = r_{i−1} − q_i
    (4) x̂ = Σ_{i=1..n} q_i         so x − x̂ = r_n (the residuals telescope)

Each q_i carries its stage's straight-through gradient and (3) is not detached (as in EnCodec and
DAC), so ∂x̂/∂x = I overall; the encoder's commitment pull therefore comes from stage 1, and every
stage's codebook is trained on its own residual.

Quantizer dropout (SoundStream §3.2): in training, with ``quantizer_dropout``, each batch runs only the
first n ~ U{1..N} stages (drawn from the module's seeded generator), so one model serves every
bitrate; at inference ``num_stages`` chooses n (default N).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lit_genvision.methods.quantizers.base import Quantized, Quantizer, QuantizerAux, total_loss
from lit_genvision.methods.quantizers.vq import VectorQuantizer


class ResidualVectorQuantizer(Quantizer):
    """N stages, each any ``Quantizer`` on the same ``dim`` (a VQ with any of its options, or FSQ).

    ``forward(z, num_stages=None)`` returns indices shaped (positions…, n) — stage last — and an aux
    whose loss is the sum of the stages' losses (parts summed by name) and whose statistics are
    (n,) tensors, one entry per stage run.

    Args:
        stages: the N quantizers, coarse to fine.
        quantizer_dropout: in training, run a random number 1..N of stages per batch.
        channel_dim: the channel axis of z (1: (B, C, H, W); −1: (B, N, C)).
        seed: seed of the dropout generator.
    """

    def __init__(
        self, stages: Sequence[Quantizer], *, quantizer_dropout: bool = False, channel_dim: int = 1, seed: int = 0
    ) -> None:
        if not stages:
            raise ValueError("a residual quantizer needs at least one stage.")
        dims = {stage.dim for stage in stages}
        if len(dims) != 1:
            raise ValueError(f"every stage must quantise the same number of channels, got {sorted(dims)}.")
        super().__init__(stages[0].dim, 0, channel_dim=channel_dim, seed=seed)
        self.stages = nn.ModuleList(stages)
        self.quantizer_dropout = quantizer_dropout

    @classmethod
    def build(
        cls,
        dim: int,
        codebook_size: int,
        num_stages: int,
        *,
        quantizer_dropout: bool = False,
        channel_dim: int = 1,
        seed: int = 0,
        **vq_options: object,
    ) -> ResidualVectorQuantizer:
        """N ``VectorQuantizer(dim, codebook_size, **vq_options)`` stages, stage i seeded with seed + 1 + i."""
        stages = [
            VectorQuantizer(dim, codebook_size, seed=seed + 1 + i, **vq_options)  # type: ignore[arg-type]
            for i in range(num_stages)
        ]
        return cls(stages, quantizer_dropout=quantizer_dropout, channel_dim=channel_dim, seed=seed)

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def bits(self) -> float:
        return sum(stage.bits for stage in self.stages)  # type: ignore[misc]

    def stages_to_run(self, num_stages: int | None) -> int:
        if num_stages is not None:
            if not 1 <= num_stages <= self.num_stages:
                raise ValueError(f"num_stages must be in 1..{self.num_stages}, got {num_stages}.")
            return num_stages
        if self.training and self.quantizer_dropout:
            return int(torch.randint(1, self.num_stages + 1, (), generator=self.generator))
        return self.num_stages

    def quantize_flat(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        res = self.quantize_stages(x, self.num_stages)
        return res[0], res[1], res[2]

    def quantize_stages(
        self, x: Tensor, n: int
    ) -> tuple[Tensor, Tensor, dict[str, Tensor], dict[str, Tensor], list[Tensor]]:
        """(1)–(4) over the first n stages of flat x (M, C) → x̂, indices (M, n), summed loss parts,
        per-stage statistics and the residuals r_1..r_n."""
        residual = x  # (1)
        x_hat = torch.zeros_like(x)
        indices, residuals = [], []
        losses: dict[str, Tensor] = {}
        stats: dict[str, list[Tensor]] = {}
        for stage in list(self.stages)[:n]:
            res = stage.quantize_with_stats(residual)  # (2)
            residual = residual - res.x_q  # (3)
            x_hat = x_hat + res.x_q  # (4)
            indices.append(res.indices)
            residuals.append(residual)
            for name, value in res.losses.items():
                losses[name] = losses[name] + value if name in losses else value
            for name, value in res.stats.items():
                stats.setdefault(name, []).append(value)
        stacked = {name: torch.stack(values) for name, values in stats.items()}
        return x_hat, torch.stack(indices, dim=1), losses, stacked, residuals

    def forward(self, z: Tensor, num_stages: int | None = None) -> Quantized:  # type: ignore[override]
        x, positions = self.flatten(z)
        n = self.stages_to_run(num_stages)
        with torch.autocast(z.device.type, enabled=False):
            x_hat, indices, losses, stats, _ = self.quantize_stages(x.float(), n)
        aux = QuantizerAux(loss=total_loss(losses, x), losses=losses, **stats)
        return Quantized(self.unflatten(x_hat.to(z.dtype), positions), indices.reshape(*positions, n), aux)

    def codes_flat(self, indices: Tensor) -> Tensor:
        """(M, n) → Σ_{i<n} stage_i's code (M, C)."""
        return sum(stage.codes_flat(indices[:, i]) for i, stage in enumerate(list(self.stages)[: indices.shape[1]]))  # type: ignore[return-value]

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """indices (positions…, n) → x̂ = Σ_{i<n} e_{i, k_i}, channels at ``channel_dim``."""
        n = indices.shape[-1]
        return self.unflatten(self.codes_flat(indices.reshape(-1, n)), indices.shape[:-1])
