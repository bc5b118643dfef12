"""ConditionalModel: the part of the sampling protocol that conditions — for every family whose generator reads a
condition (denoising models, conditional GANs, the token prior).

The conditions are the network's (``nn.conditions``): those of a ``ConditionedNet``, or a class label and a
per-sample vector read from a plain network's ``num_classes`` and ``cond_dim``. Training drops each key k of
each sample to its null with probability p_k (``cond_dropout[k]``, else ``label_dropout``); sampling without a
condition draws balanced labels (or class prompts); guidance (Ho & Salimans 2022) runs the network on the
condition and on its null and combines them as u + s·(c − u).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lit_genvision.checks import check_float
from lit_genvision.methods.guidance import Conditioning, CondKey, concat_conditions, guided
from lit_genvision.methods.masks import MaskGenerator
from lit_genvision.methods.repaint import RePaint
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.models.base import GenerativeModel
from lit_genvision.nn.conditions import Condition, KnownRegion, Label, Vector


def check_conditioning_arguments(
    label_dropout: float, guidance_scale: float, cond_dropout: dict[str, float] | None = None
) -> None:
    """The dropout and guidance arguments of a conditional model, checked at construction."""
    check_float("label_dropout", label_dropout, low=0, high=1, hint="it is the probability of a null label")
    check_float("guidance_scale", guidance_scale, hint="pass 1 for plain conditional sampling")
    for key, p in (cond_dropout or {}).items():
        check_float(f"cond_dropout[{key!r}]", p, low=0, high=1, hint=f"it is the probability of a null {key}")


def conditions_of(net: nn.Module | None) -> list[Condition]:
    """The conditions ``net`` reads: its ``conditions`` (a ``ConditionedNet``'s, a token prior's), else a ``Label``
    for ``num_classes`` and a ``Vector`` for ``cond_dim`` (in that order: the order their training dropout is
    drawn)."""
    if net is None:
        return []
    if isinstance(getattr(net, "conditions", None), nn.ModuleDict):
        return list(net.conditions.values())
    out: list[Condition] = []
    if getattr(net, "num_classes", None):
        out.append(Label(net.num_classes))
    if getattr(net, "cond_dim", None):
        out.append(Vector())
    return out


class ConditionalModel(GenerativeModel):
    """A generator that reads conditions: their dropout in training, their defaults, nulls and guidance in sampling.

    Subclasses set ``label_dropout``, ``cond_dropout`` and ``guidance_scale`` in their constructor.
    """

    label_dropout: float = 0.0
    #: Per-key dropout probabilities overriding ``label_dropout`` (None: ``label_dropout`` for every key).
    cond_dropout: dict[str, float] | None = None
    guidance_scale: float = 1.0
    #: A text model's prompt of class k at index k: its default condition (balanced classes).
    class_prompts: list[str] | None = None
    #: The synthetic masks a known-region (inpainting) model trains on (``methods.masks.MaskGenerator``).
    inpaint_masks: MaskGenerator | None = None

    @property
    def cond_net(self) -> nn.Module | None:
        """The network that reads the conditions (``net``; a GAN's generator)."""
        return getattr(self, "net", None)

    @property
    def conditions(self) -> list[Condition]:
        return conditions_of(self.cond_net)

    @property
    def num_classes(self) -> int | None:
        return getattr(self.cond_net, "num_classes", None)

    def dropout_of(self, key: str) -> float:
        """p_k: the probability that condition key ``key`` is dropped in training."""
        return float((self.cond_dropout or {}).get(key, self.label_dropout))

    @property
    def conditioning(self) -> Conditioning:
        """Every batch key of every condition, with its training dropout and its null (empty: unconditional)."""
        keys = [
            CondKey(key, self.dropout_of(key) if key in c.dropout_keys else 0.0, c.null)
            for c in self.conditions
            for key in c.keys
        ]
        return Conditioning(tuple(keys))

    def required_keys(self) -> tuple[str, ...]:
        derived = {k for c in self.conditions if c.derived for k in c.keys}
        return self.requires + tuple(k for k in self.conditioning.batch_keys if k not in derived)

    def init_conditions(self, class_prompts: list[str] | None, inpaint_masks: MaskGenerator | None) -> None:
        """Keep the default prompts and the training masks of a text or inpainting model."""
        if class_prompts is not None and (not class_prompts or not all(isinstance(p, str) for p in class_prompts)):
            raise ValueError("class_prompts must be a non-empty list of strings, the prompt of class k at index k.")
        self.class_prompts = list(class_prompts) if class_prompts else None
        if inpaint_masks is None and any(isinstance(c, KnownRegion) for c in self.conditions):
            inpaint_masks = MaskGenerator()
        self.inpaint_masks = inpaint_masks

    def encode_space(self, images: Tensor) -> Tensor:
        """Images into the space the network works in (pixels unless the family has another ``space``)."""
        space = getattr(self, "space", None)
        return images if space is None else space.encode(images)

    def with_derived(self, batch: dict[str, Any], *, training: bool = True) -> dict[str, Any]:
        """``batch`` with the conditions the model builds itself (an inpainting's known region from its images and
        masks: in training the masks are drawn by ``inpaint_masks`` from the global RNG, so a run resumes bitwise)."""
        for condition in self.conditions:
            if condition.derived:
                masks = self.inpaint_masks if training else None
                batch = {**batch, **condition.derive(batch, encode=self.encode_space, masks=masks)}
        return batch

    def train_cond(self, batch: dict[str, Tensor]) -> dict[str, Tensor] | None:
        """The training condition: each conditioning key dropped to its null with probability p_k."""
        return self.conditioning.drop(self.with_derived(batch))

    def val_cond(self, batch: dict[str, Tensor]) -> dict[str, Tensor] | None:
        """The validation condition: the batch's conditioning keys, nothing dropped (None if unconditional)."""
        return self.conditioning.select(self.with_derived(batch))

    @property
    def prompted(self) -> bool:
        """Whether the model reads text and has a prompt per class (``class_prompts``)."""
        return bool(self.class_prompts) and "text" in self.conditioning.batch_keys

    @property
    def label_count(self) -> int | None:
        """The classes a sample can be asked for: the label classes, or the class prompts."""
        return self.num_classes or (len(self.class_prompts) if self.prompted else None)

    def sample_cond(self, num: int, cond: dict | None, *, offset: int = 0) -> dict | None:
        """The given condition, or balanced labels for a conditional model: sample i of the run gets label
        i mod K, where this batch's first sample is sample ``offset`` of the run (so a run split into batches
        has the same labels as one batch). Other keys left out are null. A given ``mask`` and ``image``
        (inpainting: 1 where pixels are to be generated) become the known region, and ``sample`` composites
        the known pixels back."""
        if cond is not None:
            if not self.conditioning:
                raise ValueError(
                    f"{type(self).__name__} is not class-conditional nor otherwise conditioned (its network has "
                    "no num_classes or cond_dim), so it takes no condition; omit cond."
                )
            if "mask" in cond and "image" in cond and "inpaint" not in cond:  # the known pixels of an inpainting
                cond = self.inpainting_cond(cond)
            if "label" in cond and "text" not in cond and self.prompted:  # a class asked for by its prompt
                return {**cond, "text": [self.class_prompts[k] for k in cond["label"].tolist()]}
            return cond
        if self.prompted:
            labels = (offset + torch.arange(num, device=self.device)) % len(self.class_prompts)
            return {"text": [self.class_prompts[k] for k in labels.tolist()], "label": labels}
        if not self.num_classes:
            return None
        return {"label": (offset + torch.arange(num, device=self.device)) % self.num_classes}

    def inpainting_cond(self, cond: dict) -> dict:
        """``cond`` with the known region built from its ``mask`` and ``image`` (the known pixels), and its mask as
        float (N, 1, H, W) for ``composite``."""
        if not any(isinstance(c, KnownRegion) for c in self.conditions):
            raise ValueError(
                f"{type(self).__name__} was not trained to inpaint (its network has no inpainting input); use a "
                "checkpoint of an inpainting config such as configs/diffusion/digits_inpainting.yaml."
            )
        return self.with_derived({**cond, "image": cond["image"].to(self.device)}, training=False)

    def inpaint(
        self, images: Tensor, masks: Tensor, *, cond: dict | None = None, repaint: RePaint | None = None, **kwargs: Any
    ) -> Tensor:
        """Fill the masked pixels of ``images`` (N, C, H, W) in [-1, 1]; ``masks`` (N, H, W) or (N, 1, H, W),
        1 where pixels are to be generated: ``sample`` with ``cond={"mask", "image"}`` (and any other condition
        in ``cond``); ``repaint`` (``RePaint(jump, resample)``) is ``SampleOptions.repaint``; ``kwargs`` go to
        ``sample``."""
        if repaint is not None:
            kwargs["options"] = (kwargs.get("options") or SampleOptions()).but(repaint=repaint)
        return self.sample(len(images), cond={**(cond or {}), "mask": masks, "image": images}, **kwargs)

    @staticmethod
    def composite(images: Tensor, cond: dict | None) -> Tensor:
        """The known pixels composited back, x = m·x_gen + (1 − m)·x_known, when ``cond`` holds an inpainting
        ``mask`` and ``image``: they come out exactly as given (diffusers' inpainting pipelines do the same)."""
        if not cond or "mask" not in cond or "image" not in cond:
            return images
        masks = cond["mask"].to(images)
        return masks * images + (1 - masks) * cond["image"].to(images)

    def guidance_of(self, guidance: float | None) -> float:
        """The guidance scale s of one call: the one given, else the model's; refused without a condition."""
        if guidance is not None and not self.conditioning:
            raise ValueError(
                f"{type(self).__name__} ({self.family} family) does not take guidance= in sample(); omit it."
            )
        return self.guidance_scale if guidance is None else guidance

    def encode(self, cond: dict | None, like: Tensor) -> Any:
        """``cond`` as the network reads it: encoded once by a ``ConditionedNet``, as it is for another network."""
        encode = getattr(self.net, "encode", None)
        return encode(cond, like) if callable(encode) and cond is not None else cond

    def guided_net(self, cond: dict | None, noise: Tensor, scale: float) -> tuple[Any, Any]:
        """(the network as a sampler calls it, the condition to hand it) for one ``sample`` call: the condition
        encoded once — for guidance, the conditional and the null branch as one batch of 2B, combined at every
        step as u + s·(c − u) (``methods.guidance.guided``)."""
        conditioning = self.conditioning
        if not conditioning or not cond or scale == 1.0 or not any(k in cond for k in conditioning.batch_keys):
            return self.net, self.encode(cond, noise)
        null = conditioning.null(cond)
        if scale == 0.0:
            return self.net, self.encode(null, noise)
        kept = conditioning.null(cond, keep=True)  # the same entries as ``null``, nothing nulled
        return guided(self.net, scale), self.encode(concat_conditions(kept, null), torch.cat([noise, noise]))

    def guided_protocol(self, sampler_name: str, nfe: int, guidance: float | None = None) -> tuple[str, int]:
        """Name and NFE of a sampler run through ``guided_net``: ``+cfgS`` on the name of a conditional model, and
        two network passes per step when 0 < S ≠ 1 (both branches run)."""
        if not self.conditioning:
            return sampler_name, nfe
        scale = self.guidance_scale if guidance is None else guidance
        return f"{sampler_name}+cfg{scale:g}", nfe * (2 if scale not in (0.0, 1.0) else 1)
