"""TokenPriorModel: an autoregressive prior over a frozen tokenizer's tokens (taming-transformers'
second stage; the lecture's DALL-E), scored like any family because ``sample()`` decodes to images.

Training maximises log p(c | y) = Σ_i log p(c_i | START_y, c_<i) on the token grids of training
images (cross-entropy per token; see ``nn.token_prior``). Sampling is ``methods.autoregressive.decode``:
c_i drawn one at a time from softmax(logits / T), optionally from the k most likely codes (top-k), with a
KV cache; with a class-conditional prior, classifier-free guidance ℓ = ℓ_∅ + s·(ℓ_y − ℓ_∅) runs on the
logits of the conditional and null start tokens (the prefix of length 1).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_genvision.checks import check_float, check_int
from lit_genvision.methods.autoregressive import decode, sample_logits
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.models.conditional import ConditionalModel
from lit_genvision.models.diffusion import check_training_arguments
from lit_genvision.models.optim import adamw_with_warmup
from lit_genvision.models.pretrained import load_part, record_pretrained
from lit_genvision.models.tokenizer import VQModel
from lit_genvision.nn.token_prior import TokenTransformer

__all__ = ["TokenPriorModel", "sample_logits"]


class TokenPriorModel(ConditionalModel):
    """A causal transformer prior over the tokens of a frozen ``VQModel``.

    Args:
        tokenizer: path (or URL) of a tokenizer checkpoint written by ``lit-genvision fit``; it is
            loaded frozen (EMA weights when kept) and its path and SHA-256 are recorded.
        net: the prior network, e.g. ``TokenTransformer(vocab_size, length, stages, dim, depth, heads,
            num_classes)`` by class_path; its vocabulary, length and stages must be the tokenizer's. None
            builds one from the scalars below (the form of earlier revisions' configs).
        dim: transformer width (256), without ``net``.
        depth: transformer blocks (8), without ``net``.
        heads: attention heads (8), without ``net``.
        num_classes: class-conditional through the start token (None: unconditional), without ``net``.
        dropout: dropout inside the blocks (0), without ``net``.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear learning-rate warm-up steps.
        label_dropout: probability of training with the null start token (for guidance).
        guidance_scale: default classifier-free guidance scale s at sampling.
        temperature: default sampling temperature T.
        top_k: default top-k (None: sample from every code).
        embed_parts: keep the tokenizer's weights in this model's checkpoints (one self-contained file); False
            holds it by reference to its checkpoint (path and SHA-256 checked on every load).
    """

    family = "token_prior"
    requires: ClassVar[tuple[str, ...]] = ("image",)
    accepts: ClassVar[frozenset[str]] = frozenset({"guidance", "temperature", "top_k"})
    #: What the EMA averages: the transformer (the tokenizer is frozen).
    ema_modules: ClassVar[tuple[str, ...]] = ("net",)

    def __init__(
        self,
        tokenizer: str,
        net: TokenTransformer | None = None,
        dim: int | None = None,
        depth: int | None = None,
        heads: int | None = None,
        num_classes: int | None = None,
        dropout: float | None = None,
        lr: float = 3e-4,
        weight_decay: float = 0.01,
        warmup_steps: int = 0,
        label_dropout: float = 0.0,
        guidance_scale: float = 1.0,
        temperature: float = 1.0,
        top_k: int | None = None,
        embed_parts: bool = True,
    ) -> None:
        super().__init__()
        self.save_config()
        check_training_arguments(lr, weight_decay, warmup_steps, label_dropout, guidance_scale)
        check_float("temperature", temperature, low=0, low_open=True, hint="pass 1 to sample the model as trained")
        if top_k is not None:
            check_int("top_k", top_k, low=1, hint="pass None to sample from every code")
        hint = "pass the checkpoint of a VQModel (configs/tokenizer/*.yaml)."
        model, info = load_part(tokenizer, "tokenizer", VQModel, hint, embed=embed_parts)
        record_pretrained(self, "tokenizer", info)
        self.tokenizer = model
        self.grid = model.token_shape()
        stages = self.grid[2] if len(self.grid) == 3 else 1
        length = self.grid[0] * self.grid[1] * stages
        sizes = {"dim": dim, "depth": depth, "heads": heads, "num_classes": num_classes, "dropout": dropout}
        if net is None:
            defaults = {"dim": 256, "depth": 8, "heads": 8, "num_classes": None, "dropout": 0.0}
            sizes = {k: defaults[k] if v is None else v for k, v in sizes.items()}
            net = TokenTransformer(model.vocab_size, length, stages, **sizes)
        elif any(v is not None for v in sizes.values()):
            given = ", ".join(k for k, v in sizes.items() if v is not None)
            raise ValueError(f"{given} size(s) the network built when no net is given; set them on the net instead.")
        got = (net.vocab_size, net.length, net.stages)
        if got != (model.vocab_size, length, stages):
            raise ValueError(
                f"the prior network models {got[0]} codes × {got[1]} tokens in {got[2]} stage(s) but the tokenizer "
                f"gives {model.vocab_size} × {length} in {stages}; build it with vocab_size={model.vocab_size}, "
                f"length={length}, stages={stages}."
            )
        self.net = net
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

    def sampling_protocol(self, steps: int | None = None, options: SampleOptions | None = None) -> tuple[str, int]:
        options = options or SampleOptions()
        temperature, top_k = self.decoding(options)
        name = f"ar(T={temperature:g}" + (f",top{top_k})" if top_k else ")")
        return self.guided_protocol(name, self.net.length, options.guidance)

    def decoding(self, options: SampleOptions) -> tuple[float, int | None]:
        """(temperature, top-k) of one call: the options', else the model's."""
        temperature = self.temperature if options.temperature is None else options.temperature
        return temperature, self.top_k if options.top_k is None else options.top_k

    @torch.no_grad()
    def sample(
        self,
        num: int,
        *,
        cond: dict | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        options: SampleOptions | None = None,
    ) -> Tensor:
        """Draw L tokens one by one (``methods.autoregressive.decode``) and decode them: (num, C, H, W) in [-1, 1].

        ``steps`` and ``noise`` are refused (the sequence length is the tokenizer's); ``guidance`` needs a
        class-conditional prior.
        """
        options = self.checked(options, steps=steps)
        scale = self.guidance_of(options.guidance)
        temperature, top_k = self.decoding(options)
        cond = self.sample_cond(num, cond)
        with self.eval_mode(self.net):
            prefix = self.net.prefix_tokens(cond, num, self.device)
            null = self.net.prefix_tokens(None, num, self.device) if cond and scale != 1.0 else None
            codes = decode(
                self.net, prefix, self.net.length, null_prefix=null, guidance=scale, temperature=temperature,
                top_k=top_k, generator=generator,
            )  # fmt: skip
        return self.tokenizer.decode_indices(codes.view(num, *self.grid))
