"""CLIP (Radford et al. 2021, arXiv 2103.00020) as a family: contrastive image–text training, with
zero-shot accuracy and image↔text retrieval recall logged at validation. Not a generative model: it
gives the text encoder, the image embedding and the CLIP score that the text-conditioned families use.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from lit_genvision.checks import check_float, check_int
from lit_genvision.methods.contrastive import clip_loss, logit_scale, retrieval_recall, zero_shot_logits
from lit_genvision.models.base import PlatformModule
from lit_genvision.models.conditions import ensure_tokenizer
from lit_genvision.nn.clip import CLIP


class CLIPModel(PlatformModule):
    """Trains `nn.clip.CLIP` with the symmetric InfoNCE loss; under DDP the features of all ranks are
    gathered (with gradient) so every rank sees the global batch's negatives.

    If the text tower has no tokenizer yet, a byte-level BPE of ``vocab_size`` tokens is trained on
    the data module's training captions at fit start (deterministic, so every DDP rank trains the
    same one), stored inside the tower (so the checkpoint is self-contained) and saved beside the
    checkpoints as ``tokenizer.json``.

    Args:
        net: the two towers and the temperature.
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay on matrices (not on gains, biases, embeddings' positions
            nor the temperature: open_clip's exclusion).
        warmup_steps: linear warm-up steps, then cosine decay to 0 over the run's steps.
        betas: AdamW betas (CLIP: 0.9, 0.98).
        eps: AdamW ε (CLIP: 1e-6).
        vocab_size: size of the BPE trained at fit start when the text tower has none.
        gather_with_grad: gather the other ranks' features with gradient (open_clip's
            ``gather_with_grad``); False gathers them as constants.
        local_loss: each rank computes the loss of its own rows against all columns (less memory).
        text_token_noise: during training, each word token of a caption (not the start and end tokens)
            is replaced by a random token with this probability. On a small caption corpus most
            tokens of an unseen word were never trained; this teaches the text tower that words it
            cannot read do not decide the embedding (0: off; towers of our own BPE only).
    """

    family = "clip"
    requires: ClassVar[tuple[str, ...]] = ("image", "text")

    def __init__(
        self,
        net: CLIP,
        lr: float = 5e-4,
        weight_decay: float = 0.1,
        warmup_steps: int = 0,
        betas: tuple[float, float] = (0.9, 0.98),
        eps: float = 1e-6,
        vocab_size: int = 1000,
        gather_with_grad: bool = True,
        local_loss: bool = False,
        text_token_noise: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_config()
        check_float("lr", lr, low=0, low_open=True, hint="pass a positive learning rate such as 5e-4")
        check_float("weight_decay", weight_decay, low=0, hint="pass 0 for no weight decay")
        check_int("warmup_steps", warmup_steps, low=0, hint="pass 0 for no warm-up")
        check_int("vocab_size", vocab_size, low=8, hint="a byte-level BPE needs room for its bytes and merges")
        check_float("text_token_noise", text_token_noise, low=0, high=1, hint="it is a probability; pass 0 for none")
        self.net = net
        self.lr, self.weight_decay, self.warmup_steps = lr, weight_decay, warmup_steps
        self.betas, self.eps, self.vocab_size = tuple(betas), eps, vocab_size
        self.gather_with_grad, self.local_loss = gather_with_grad, local_loss
        self.text_token_noise = text_token_noise
        self._outputs: dict[str, list[Tensor]] = {}

    # -- the tokenizer ------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit":
            ensure_tokenizer(self.trainer, self.net.text_tower, self.vocab_size)

    # -- training ------------------------------------------------------------------------------------
    def features(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Unit-norm image and text embeddings of a batch: (B, E) each."""
        return self.net.encode_image(batch["image"]), self.net.encode_text(batch["text"])

    def noisy_text_features(self, texts: list[str]) -> Tensor:
        """Unit-norm text embeddings with ``text_token_noise`` of the word tokens replaced at random."""
        tower = self.net.text_tower
        ids, mask = tower.tokenize(texts)
        last = mask.sum(1, keepdim=True) - 1  # the end-of-text position of each caption
        position = torch.arange(ids.shape[1], device=ids.device)
        words = mask & (position > 0) & (position < last)
        hit = words & (torch.rand(ids.shape, device=ids.device) < self.text_token_noise)
        tok = tower.tokenizer
        first = max(tok.pad_id, tok.sot_id, tok.eot_id) + 1  # the special tokens come first in the vocabulary
        noise = torch.randint(first, tok.vocab_size, ids.shape, device=ids.device)
        return self.net.text_embedding(tower.encode_ids(torch.where(hit, noise, ids), mask).pooled)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        if self.text_token_noise > 0 and hasattr(self.net.text_tower, "encode_ids"):  # a tower of our own BPE
            image, text = self.net.encode_image(batch["image"]), self.noisy_text_features(batch["text"])
        else:
            image, text = self.features(batch)
        distributed = self.trainer.world_size > 1
        loss = clip_loss(
            image, text, self.net.log_scale, gather=distributed, gather_with_grad=self.gather_with_grad,
            local_loss=self.local_loss,
        )  # fmt: skip
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/logit_scale", logit_scale(self.net.log_scale.detach()))
        return loss

    # -- validation and test: retrieval and zero-shot over the whole split ---------------------------
    def _eval_step(self, batch: dict[str, Any], split: str) -> None:
        image, text = self.features(batch)
        loss = clip_loss(image, text, self.net.log_scale, gather=False)
        self.log(f"{split}/loss", loss, sync_dist=True, batch_size=len(image))
        out = self._outputs.setdefault(split, [])
        labels = batch.get("label")
        labels = labels if labels is not None else torch.full((len(image),), -1, device=image.device)
        out.append(torch.cat([image, text, labels[:, None].to(image.dtype)], dim=1))

    def _eval_epoch_end(self, split: str) -> None:
        rows = torch.cat(self._outputs.pop(split, []) or [torch.empty(0, 2 * self.net.embed_dim + 1)])
        if self.trainer.world_size > 1:
            rows = self.all_gather(rows).flatten(0, 1)
        if not len(rows):
            return
        e = self.net.embed_dim
        image, text, labels = rows[:, :e], rows[:, e : 2 * e], rows[:, -1].long()
        metrics = {f"{split}/{k}": v for k, v in retrieval_recall(image, text).items()}
        prompts = getattr(getattr(self.trainer, "datamodule", None), "zero_shot_prompts", None)
        if prompts is not None and bool((labels >= 0).all()):
            classes = self.class_embeddings(prompts(split))
            accuracy = (zero_shot_logits(image, classes).argmax(1) == labels).double().mean().item()
            metrics[f"{split}/zero_shot_top1"] = accuracy
        self.log_dict(metrics, rank_zero_only=True)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    # -- zero-shot -----------------------------------------------------------------------------------
    @torch.no_grad()
    def class_embeddings(self, prompts: list[list[str]]) -> Tensor:
        """`nn.clip.CLIP.class_embeddings` with the network in eval mode (no dropout)."""
        with self.eval_mode(self.net):
            return self.net.class_embeddings(prompts)

    # -- optimiser -----------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        decay, no_decay = [], []
        for name, p in self.net.named_parameters():
            if not p.requires_grad:
                continue
            exempt = p.ndim < 2 or name.endswith(("log_scale", "pos", "cls")) or "norm" in name or "ln_" in name
            (no_decay if exempt else decay).append(p)
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=self.lr, betas=self.betas, eps=self.eps)
        total = max(1, int(self.trainer.estimated_stepping_batches)) if self.trainer else 1
        warmup = self.warmup_steps

        def factor(step: int) -> float:  # linear warm-up, then cosine to 0 (open_clip's schedule)
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.5 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
