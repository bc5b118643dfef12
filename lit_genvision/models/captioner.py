"""The captioner (family ``captioner``): image → caption on a frozen CLIP, ClipCap-style. The lecture's
Sora section: train a captioning model, then re-caption the training data with it
(``lit-genvision caption``)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_genvision.checks import check_float, check_int
from lit_genvision.data.captions import caption_digit
from lit_genvision.methods.autoregressive import beam, decode
from lit_genvision.models.base import PlatformModule
from lit_genvision.models.clip import CLIPModel
from lit_genvision.models.optim import adamw_with_warmup
from lit_genvision.models.pretrained import load_part, record_pretrained
from lit_genvision.nn.captioner import CaptionDecoder


class CaptionerModel(PlatformModule):
    """A `CaptionDecoder` trained by teacher forcing on (image, caption) pairs, reading the frozen
    CLIP image embedding and writing with the CLIP text tower's BPE tokenizer.

    Args:
        clip: path of a CLIP checkpoint written by ``lit-genvision fit`` (loaded frozen; its path
            and SHA-256 are recorded).
        net: the decoder, e.g. ``CaptionDecoder(vocab_size, embed_dim, prefix_length, dim, depth, heads)`` by
            class_path; its vocabulary and embedding width must be the CLIP's. None builds one from the scalars
            below (the form of earlier revisions' configs).
        prefix_length: tokens the image embedding becomes (ClipCap: 10 for COCO; 4 by default), without ``net``.
        dim: decoder width (128), without ``net``.
        depth: decoder blocks (3), without ``net``.
        heads: attention heads (4), without ``net``.
        dropout: dropout inside the blocks (0), without ``net``.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear learning-rate warm-up steps.
        beam_width: beams of `caption` by default (1: greedy).
        embed_parts: keep the CLIP's weights in this model's checkpoints (one self-contained file); False
            holds it by reference to its checkpoint (path and SHA-256 checked on every load).
    """

    family = "captioner"
    requires: ClassVar[tuple[str, ...]] = ("image", "text")

    def __init__(
        self,
        clip: str,
        net: CaptionDecoder | None = None,
        prefix_length: int | None = None,
        dim: int | None = None,
        depth: int | None = None,
        heads: int | None = None,
        dropout: float | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 0,
        beam_width: int = 3,
        embed_parts: bool = True,
    ) -> None:
        super().__init__()
        self.save_config()
        check_float("lr", lr, low=0, low_open=True, hint="pass a positive learning rate such as 1e-3")
        check_float("weight_decay", weight_decay, low=0, hint="pass 0 for no weight decay")
        check_int("warmup_steps", warmup_steps, low=0, hint="pass 0 for no warm-up")
        check_int("beam_width", beam_width, low=1, hint="pass 1 for greedy decoding")
        hint = "pass the checkpoint of a CLIPModel (configs/clip/*.yaml)."
        model, info = load_part(clip, "clip", CLIPModel, hint, embed=embed_parts)
        record_pretrained(self, "clip", info)
        self.clip = model
        tower = model.net.text_tower  # its embedding rows: at least the tokenizer's vocabulary
        sizes = {"prefix_length": prefix_length, "dim": dim, "depth": depth, "heads": heads, "dropout": dropout}
        if net is None:
            defaults = {"prefix_length": 4, "dim": 128, "depth": 3, "heads": 4, "dropout": 0.0}
            sizes = {k: defaults[k] if v is None else v for k, v in sizes.items()}
            net = CaptionDecoder(tower.vocab_size, model.net.embed_dim, **sizes)
        elif any(v is not None for v in sizes.values()):
            given = ", ".join(k for k, v in sizes.items() if v is not None)
            raise ValueError(f"{given} size(s) the decoder built when no net is given; set them on the net instead.")
        wanted = (tower.vocab_size, model.net.embed_dim)
        if (net.vocab_size, net.embed_dim) != wanted:
            raise ValueError(
                f"the caption decoder reads {net.embed_dim}-wide embeddings into {net.vocab_size} tokens but the CLIP "
                f"gives {wanted[1]}-wide ones and {wanted[0]} tokens; build it with vocab_size={wanted[0]}, "
                f"embed_dim={wanted[1]}."
            )
        self.net = net
        self.lr, self.weight_decay, self.warmup_steps = lr, weight_decay, warmup_steps
        self.beam_width = beam_width

    @property
    def tokenizer(self):
        """The CLIP text tower's BPE tokenizer (stored in the CLIP weights)."""
        return self.clip.net.text_tower.tokenizer

    def image_embedding(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            return self.clip.net.encode_image(images)

    def _loss(self, batch: dict[str, Any]) -> Tensor:
        ids, mask = (t.to(self.device) for t in self.tokenizer(batch["text"]))
        logits = self.net(self.image_embedding(batch["image"]), ids[:, :-1], mask[:, :-1])  # (B, T − 1, V)
        target = mask[:, 1:]  # predict every real token after the start token, end-of-text included
        return F.cross_entropy(logits[target].float(), ids[:, 1:][target])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.log("val/loss", self._loss(batch), prog_bar=True, sync_dist=True, batch_size=len(batch["image"]))
        if batch.get("label") is not None:  # captions that name the right digit (greedy)
            named = [caption_digit(c) for c in self.caption(batch["image"], beam_width=1)]
            right = sum(int(n == int(k)) for n, k in zip(named, batch["label"], strict=True)) / len(named)
            self.log("val/digit_named", right, sync_dist=True, batch_size=len(named))

    @torch.no_grad()
    def caption(self, images: Tensor, beam_width: int | None = None, max_length: int | None = None) -> list[str]:
        """Captions of images (B, C, H, W) in [-1, 1]: beam search of ``beam_width`` (the model's by
        default; 1 is greedy), at most ``max_length`` tokens (the tokenizer's)."""
        tok = self.tokenizer
        width = beam_width or self.beam_width
        length = max_length or tok.max_length
        with self.eval_mode(self.net):
            emb = self.image_embedding(images.to(self.device))
            prefix, bos = self.net.prefix_tokens(emb), torch.full((len(emb), 1), tok.sot_id, device=self.device)
            if width == 1:
                ids = decode(self.net, prefix, length - 1, given=bos, greedy=True, eot=tok.eot_id)
            else:
                ids = beam(self.net, prefix, length - 1, given=bos, eot=tok.eot_id, width=width)
        return tok.decode(torch.cat([bos, ids], dim=1).cpu())

    def configure_optimizers(self) -> Any:
        return adamw_with_warmup(self.net.parameters(), self.lr, self.weight_decay, self.warmup_steps)
