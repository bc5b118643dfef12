"""TokenPriorModel: an autoregressive prior over a frozen tokenizer's tokens (taming-transformers'
second stage; the lecture's DALL-E), scored like any family because ``sample()`` decodes to images.

Training maximises log p(c | y) = Σ_i log p(c_i | START_y, c_<i) on the token grids of training
images (cross-entropy per token; see ``nn.token_prior``). Sampling draws c_i one at a time from
softmax(logits / T), optionally restricted to the k most likely codes (top-k), reusing the keys and
values of earlier tokens (KV cache); with a class-conditional prior, classifier-free guidance
ℓ = ℓ_∅ + s·(ℓ_y − ℓ_∅) runs on the logits of the conditional and null start tokens.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_genvision.checks import check_float, check_int
from lit_genvision.models.base import GenerativeModel
from lit_genvision.models.diffusion import check_training_arguments
from lit_genvision.models.optim import adamw_with_warmup
from lit_genvision.models.pretrained import load_pretrained, record_pretrained
from lit_genvision.models.tokenizer import VQModel
from lit_genvision.nn.token_prior import TokenTransformer


def sample_logits(logits: Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None) -> Tensor:
    """One code per row of logits (B, V): c ~ softmax(logits / T) over the top-k codes (all if None)."""
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    gdev = generator.device if generator is not None else probs.device
    return torch.multinomial(probs.to(gdev), 1, generator=generator).to(probs.device).squeeze(1)


class TokenPriorModel(GenerativeModel):
    """A causal transformer prior over the tokens of a frozen ``VQModel``.

    Args:
        tokenizer: path (or URL) of a tokenizer checkpoint written by ``lit-genvision fit``; it is
            loaded frozen (EMA weights when kept) and its path and SHA-256 are recorded.
        dim: transformer width.
        depth: transformer blocks.
        heads: attention heads.
        num_classes: class-conditional through the start token (None: unconditional).
        dropout: dropout inside the blocks.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear learning-rate warm-up steps.
        label_dropout: probability of training with the null start token (for guidance).
        guidance_scale: default classifier-free guidance scale s at sampling.
        temperature: default sampling temperature T.
        top_k: default top-k (None: sample from every code).
    """

    family = "token_prior"
    requires: ClassVar[tuple[str, ...]] = ("image",)
    #: What the EMA averages: the transformer (the tokenizer is frozen).
    ema_modules: ClassVar[tuple[str, ...]] = ("net",)

    def __init__(
        self,
        tokenizer: str,
        dim: int = 256,
        depth: int = 8,
        heads: int = 8,
        num_classes: int | None = None,
        dropout: float = 0.0,
        lr: float = 3e-4,
        weight_decay: float = 0.01,
        warmup_steps: int = 0,
        label_dropout: float = 0.0,
        guidance_scale: float = 1.0,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> None:
        super().__init__()
        self.save_config()
        check_training_arguments(lr, weight_decay, warmup_steps, label_dropout, guidance_scale)
        check_float("temperature", temperature, low=0, low_open=True, hint="pass 1 to sample the model as trained")
        if top_k is not None:
            check_int("top_k", top_k, low=1, hint="pass None to sample from every code")
        model, info = load_pretrained(tokenizer)
        if not isinstance(model, VQModel):
            raise ValueError(
                f"tokenizer {tokenizer} holds a {type(model).__name__}; pass the checkpoint of a VQModel "
                "(configs/tokenizer/*.yaml)."
            )
        record_pretrained(self, "tokenizer", info)
        self.tokenizer = model
        self.grid = model.token_shape()
        stages = self.grid[2] if len(self.grid) == 3 else 1
        length = self.grid[0] * self.grid[1] * stages
        self.net = TokenTransformer(model.vocab_size, length, stages, dim, depth, heads, num_classes, dropout)
        self.lr, self.weight_decay, self.warmup_steps = lr, weight_decay, warmup_steps
        self.label_dropout, self.guidance_scale = label_dropout, guidance_scale
        self.temperature, self.top_k = temperature, top_k
        self.image_shape = model.image_shape

    def tokens(self, images: Tensor) -> Tensor:
        """The token sequence (B, L) of images: raster order, residual stages depth-first."""
        return self.tokenizer.encode_indices(images).reshape(len(images), -1)

    def _loss(self, batch: dict[str, Tensor], cond: dict | None) -> Tensor:
        codes = self.tokens(batch["image"])
        logits = self.net(codes, cond)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), codes.reshape(-1))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self._loss(batch, self.train_cond(batch))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss = self._loss(batch, self.val_cond(batch))
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)
        self.log("val/bits_per_token", loss / torch.log(torch.tensor(2.0)), sync_dist=True)

    def configure_optimizers(self) -> Any:
        return adamw_with_warmup(self.net.parameters(), self.lr, self.weight_decay, self.warmup_steps)

    def sampling_protocol(self, steps: int | None = None, sampler: object | None = None) -> tuple[str, int]:
        name = f"ar(T={self.temperature:g}" + (f",top{self.top_k})" if self.top_k else ")")
        return self.guided_protocol(name, self.net.length)

    @torch.no_grad()
    def sample(
        self,
        num: int,
        *,
        cond: dict | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        sampler: object | None = None,
        guidance: float | None = None,
        noise: Tensor | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
    ) -> Tensor:
        """Draw L tokens one by one (KV cache) and decode them: (num, C, H, W) in [-1, 1].

        ``steps``, ``sampler`` and ``noise`` are refused (the sequence length is the tokenizer's);
        ``guidance`` needs a class-conditional prior.
        """
        self.refuse_options(steps=steps, sampler=sampler, noise=noise)
        if guidance is not None and not self.conditioning:
            self.refuse_options(guidance=guidance)
        temperature = self.temperature if temperature is None else temperature
        check_float("temperature", temperature, low=0, low_open=True, hint="pass 1 to sample the model as trained")
        top_k = self.top_k if top_k is None else top_k
        scale = self.guidance_scale if guidance is None else guidance
        cond = self.sample_cond(num, cond)
        labels = cond["label"] if cond else None
        guided = labels is not None and scale != 1.0
        batch = 2 * num if guided else num
        start = self.net.start_ids(labels, num, self.device)
        if guided:  # conditional rows, then the same rows with the null start token
            start = torch.cat([start, self.net.start_ids(None, num, self.device)])
        codes = torch.empty(num, self.net.length, dtype=torch.long, device=self.device)
        with self.eval_mode(self.net):
            cache, ids = self.net.new_cache(), start
            for i in range(self.net.length):
                logits = self.net.step(ids, cache)  # (batch, V)
                if guided:
                    c, u = logits.chunk(2)
                    logits = u + scale * (c - u)
                codes[:, i] = sample_logits(logits, temperature, top_k, generator)
                ids = self.net.code_ids(codes[:, i : i + 1], i)
                ids = torch.cat([ids, ids]) if batch != num else ids
        return self.tokenizer.decode_indices(codes.view(num, *self.grid))
