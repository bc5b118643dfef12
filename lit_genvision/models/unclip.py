"""DALL-E 2 (unCLIP, Ramesh et al. 2022, arXiv 2204.06125): captions → CLIP image embeddings through a trained
prior (§2.2), each the best of K candidates by cosine to the caption's CLIP text embedding; and the pipeline
``UnCLIPModel`` — CLIP, prior and decoder composed by reference — that ``sample``, ``evaluate`` and the
leaderboard take as one model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_genvision.methods.diffusion import randn_like
from lit_genvision.methods.interpolation import interpolate_noise, slerp
from lit_genvision.methods.rerank import best_of
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.models.clip import CLIPModel
from lit_genvision.models.clip_space import CLIPImageSpace
from lit_genvision.models.conditional import ConditionalModel
from lit_genvision.models.denoising import DenoisingModel
from lit_genvision.models.pretrained import PRETRAINED_KEY, by_reference, load_part, record_pretrained
from lit_genvision.models.token_prior import TokenPriorModel
from lit_genvision.nn.conditions import ImageEmbedding


@torch.no_grad()
def text_embeddings(prior: DenoisingModel, prompts: list[str]) -> Tensor:
    """The unit-norm CLIP text embeddings (B, D) of ``prompts``, by the prior's own frozen text tower."""
    encoder = getattr(prior.net, "text_encoder", None)
    if encoder is None:
        raise ValueError("this model reads no text; pass a prior checkpoint (configs/unclip/digits_prior.yaml).")
    return encoder.encode(list(prompts)).pooled.to(prior.device)


@torch.no_grad()
def sample_image_embeddings(
    prior: DenoisingModel,
    prompts: list[str],
    *,
    candidates: int = 2,
    guidance: float | None = None,
    steps: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Unit-norm CLIP image embeddings (B, D), one per prompt: K = ``candidates`` draws of the prior each,
    the one with the highest cosine to the prompt's text embedding kept (the paper's K = 2)."""
    if candidates < 1:
        raise ValueError(f"candidates must be at least 1 (the paper draws 2), got {candidates}.")
    prompts = list(prompts)
    drawn = prior.sample(
        candidates * len(prompts), cond={"text": prompts * candidates}, steps=steps, generator=generator,
        options=SampleOptions(guidance=guidance),
    )  # (K·B, D), candidate k of prompt b at row k·B + b  # fmt: skip
    chosen, _ = best_of(drawn.view(candidates, len(prompts), -1), text_embeddings(prior, prompts))
    return chosen  # (B, D)


class UnCLIPModel(ConditionalModel):
    """DALL-E 2 as one model (unCLIP, Ramesh et al. 2022, §2): caption y → prior P(z_i | y) → decoder P(x | z_i),
    composed from three checkpoints held by reference (path and SHA-256, no copied weights): the CLIP that defines
    the embedding space, a prior (``configs/unclip/digits_prior.yaml``) and a decoder conditioned on CLIP image
    embeddings (``configs/unclip/digits_decoder.yaml``). ``sample(num, cond={"text": prompts})`` draws each
    prompt's embedding (best of ``candidates`` by cosine to its text embedding) and decodes it;
    ``cond={"image_embedding": e}`` decodes given embeddings (variations, interpolation). A file changed since
    composition is refused when the model is rebuilt (``models.pretrained``).

    Args:
        clip: path of the CLIP checkpoint.
        prior: path of the prior checkpoint (a ``DenoisingModel`` in that CLIP's image-embedding space).
        decoder: path of the decoder checkpoint: a ``DenoisingModel`` or a ``TokenPriorModel`` reading an
            ``image_embedding`` (``configs/unclip/digits_decoder.yaml``, ``digits_token_decoder.yaml``).
        candidates: K, the prior's draws per prompt (the paper's 2).
        prior_guidance: the prior's guidance scale (None: its own).
        prior_steps: the prior sampler's steps (None: its own).
        class_prompts: the prompt of class k at index k, drawn without a prompt (None: the prior's, else the
            digits' "a handwritten k").
        embedding: what the decoder is fed: ``prior`` (its image embedding of the prompt) or ``text`` (the
            prompt's CLIP text embedding itself: the paper's "importance of the prior" baseline, §5.1).
        noise_level: the level the embedding is noise-augmented to before decoding (Stable unCLIP's
            ``noise_level``; 0: clean), in ``sample`` and ``variations``; needs a decoder trained with
            ``ImageEmbedding(noise_levels=…)``. Higher levels keep less of the embedding and vary more.
    """

    family = "unclip"
    requires = ()

    def __init__(
        self,
        clip: str,
        prior: str,
        decoder: str,
        candidates: int = 2,
        prior_guidance: float | None = None,
        prior_steps: int | None = None,
        class_prompts: list[str] | None = None,
        embedding: str = "prior",
        noise_level: int = 0,
    ) -> None:
        super().__init__()
        self.save_config()
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1 (the paper draws 2), got {candidates}.")
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {', '.join(EMBEDDINGS)}, got {embedding!r}.")
        self.embedding = embedding
        clip_model, clip_info = load_part(clip, "clip", CLIPModel, CLIP_HINT, embed=False)
        prior_model, prior_info = load_part(prior, "prior", DenoisingModel, PRIOR_HINT, embed=False)
        decoder_model, decoder_info = load_part(decoder, "decoder", DECODERS, DECODER_HINT, embed=False)
        dim = clip_model.net.embed_dim
        check_prior(prior_model, prior, dim, clip_info["sha256"])
        levels = check_decoder(decoder_model, decoder, dim).noise_levels
        if noise_level and not 0 < noise_level < levels:
            raise ValueError(
                f"noise_level {noise_level} is not one of the decoder's noise-augmentation levels (it was trained "
                f"with noise_levels: {levels}); pass 0, or a decoder trained with more."
            )
        self.noise_level = noise_level
        for name, info in (("clip", clip_info), ("prior", prior_info), ("decoder", decoder_info)):
            record_pretrained(self, name, info)
        self.clip = by_reference(clip_model.net)  # the network is what the pipeline holds of the CLIP
        self.prior, self.decoder = prior_model, decoder_model
        self.candidates, self.prior_guidance, self.prior_steps = candidates, prior_guidance, prior_steps
        self.guidance_scale = decoder_model.guidance_scale
        self.class_prompts = list(class_prompts or prior_model.class_prompts or DEFAULT_PROMPTS)
        #: What ``sample`` takes: the decoder's sampling options (the prior's are fixed by the composition).
        self.accepts = frozenset(decoder_model.accepts) & PIPELINE_OPTIONS
        self.data_config = prior_model.data_config  # the captioned images the pipeline is scored against
        self.image_shape = tuple(decoder_model.image_shape)
        self._sample_shape = tuple(decoder_model.sample_shape)

    @property
    def cond_net(self) -> nn.Module:
        """The prior's network reads the caption: the pipeline's condition is its text."""
        return self.prior.net

    def sampling_protocol(self, steps: int | None = None, options: SampleOptions | None = None) -> tuple[str, int]:
        """The protocol ``prior <its sampler> best-of-K → decoder <its sampler>`` and the network passes per image."""
        prior_name, prior_nfe = self.prior.sampling_protocol(
            self.prior_steps, SampleOptions(guidance=self.prior_guidance)
        )
        name, nfe = self.decoder.sampling_protocol(steps, options)
        if self.noise_level:
            name = f"{name} noise level {self.noise_level}"
        if self.embedding == "text":
            return f"text embedding → decoder {name}", nfe
        return f"prior {prior_name} best-of-{self.candidates} → decoder {name}", self.candidates * prior_nfe + nfe

    @torch.no_grad()
    def image_embeddings(self, prompts: list[str], generator: torch.Generator | None = None) -> Tensor:
        """The prior's embedding (B, D) of each prompt, the best of ``candidates`` (with ``embedding="text"``,
        the prompt's text embedding)."""
        if self.embedding == "text":
            return text_embeddings(self.prior, prompts)
        return sample_image_embeddings(
            self.prior, prompts, candidates=self.candidates, guidance=self.prior_guidance, steps=self.prior_steps,
            generator=generator,
        )  # fmt: skip

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
        """Text → embedding → image: (num, *image_shape) in [-1, 1]. ``cond`` holds ``text`` (num prompts; the
        class prompts when absent) or ``image_embedding`` (num, D) unit-norm embeddings to decode (with ``text``
        too for a decoder that reads the caption; without it, that decoder's caption is the null "")."""
        options = self.checked(options, steps=steps)
        cond = dict(cond or {})
        e, prompts = cond.get("image_embedding"), cond.get("text")
        if e is None:
            asked = {k: cond[k] for k in ("text", "label") if k in cond}  # a label asks for its class prompt
            prompts = self.sample_cond(num, asked or None)["text"]
            e = self.image_embeddings(list(prompts), generator)
        if len(e) != num:
            raise ValueError(f"cond['image_embedding'] must hold {num} embeddings, one per sample; got {len(e)}.")
        decoder_cond = self.decoder_cond(e.to(self.device), generator)
        if prompts is not None and "text" in self.decoder.conditioning.batch_keys:  # GLIDE's caption, beside e
            decoder_cond["text"] = list(prompts)
        return self.decoder.sample(num, cond=decoder_cond, steps=steps, generator=generator, options=options)

    def decoder_cond(self, e: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The decoder's condition of embeddings e (B, D): e itself, or noise-augmented to ``noise_level``."""
        if not self.noise_level:
            return {"image_embedding": e}
        condition = next(c for c in self.decoder.conditions if isinstance(c, ImageEmbedding))
        return condition.augment(e, self.noise_level, generator)

    @torch.no_grad()
    def embed_images(self, images: Tensor) -> Tensor:
        """The CLIP image embeddings (N, D) of ``images`` (N, C, H, W) in [-1, 1]."""
        return F.normalize(self.clip.encode_image(images.to(self.device)), dim=-1)

    def check_invertible(self, what: str) -> None:
        """Refuse ``what`` (variations, text diffs) in one sentence unless the decoder inverts images to noise."""
        if not callable(getattr(self.decoder, "invert", None)):  # a flow decoder's method refuses in its own words
            raise ValueError(
                f"{what} invert the image through a diffusion decoder, and this pipeline's decoder is a "
                f"{self.decoder.family} model; compose one with configs/unclip/digits_decoder.yaml."
            )

    @torch.no_grad()
    def variations(
        self, images: Tensor, num: int, *, eta: float = 1.0, steps: int | None = None, guidance: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:  # fmt: skip
        """``num`` variations of each image (N·num, C, H, W), image-major (unCLIP §3.1): e = E_I(x), x_T = the DDIM
        inversion of x under e (no guidance), then DDIM with η from x_T under e. η = 0 and ``guidance=1``
        reconstruct x; η > 0 keeps what e encodes (the digit, its style) and redraws the rest."""
        if num < 1:
            raise ValueError(f"num must be at least 1 variation per image, got {num}.")
        self.check_invertible("variations")
        e = self.embed_images(images)
        x_t = self.decoder.invert(images, cond={"image_embedding": e}, steps=steps)
        # DDIM as the decoder samples (x̂_0 clipped in pixel space): the first step from the inverted x_T divides by
        # √ᾱ_T (≈ 1e-3 or less) and only the clip keeps that from amplifying the network's error
        options = SampleOptions(noise=x_t.repeat_interleave(num, 0), sampler="ddim", eta=eta, guidance=guidance)
        cond = self.decoder_cond(e.repeat_interleave(num, 0), generator)
        return self.decoder.sample(len(e) * num, cond=cond, steps=steps, generator=generator, options=options)

    @torch.no_grad()
    def interpolate_images(
        self, a: Tensor, b: Tensor, num: int, *, steps: int | None = None, guidance: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:  # fmt: skip
        """``num`` images (num, C, H, W) decoded from e_θ = slerp(E_I(a), E_I(b), θ), θ from 0 to 1, one x_T
        fixed for the row (drawn from ``generator``) and DDIM η = 0 (unCLIP §3.2)."""
        e = interpolate_noise(self.embed_images(a[:1]), self.embed_images(b[:1]), num)  # (num, D)
        noise = randn_like(torch.empty((1, *self.decoder.sample_shape), device=self.device), generator)
        options = SampleOptions(noise=noise.expand(num, *noise.shape[1:]), deterministic=True, guidance=guidance)
        return self.decoder.sample(num, cond={"image_embedding": e}, steps=steps, options=options)

    @torch.no_grad()
    def text_diff(
        self, image: Tensor, source: str, target: str, thetas: list[float], *, steps: int | None = None,
        guidance: float | None = None,
    ) -> Tensor:  # fmt: skip
        """The image (1, C, H, W) moved toward ``target`` from ``source`` (unCLIP §3.3): z_d = norm(E_T(target) −
        E_T(source)), e_θ = slerp(E_I(image), z_d, θ) for each θ (≤ 0.5 keeps the image's look), decoded by
        DDIM η = 0 from the image's own inverted x_T; returns (len(thetas), C, H, W)."""
        self.check_invertible("text diffs")
        texts = text_embeddings(self.prior, [source, target])
        z_d = F.normalize(texts[1] - texts[0], dim=-1)[None]  # (1, D)
        e = self.embed_images(image[:1])
        x_t = self.decoder.invert(image[:1], cond={"image_embedding": e}, steps=steps)
        rows = torch.cat([slerp(e, z_d, float(theta)) for theta in thetas])  # (n, D)
        options = SampleOptions(noise=x_t.expand(len(rows), *x_t.shape[1:]), deterministic=True, guidance=guidance)
        return self.decoder.sample(len(rows), cond={"image_embedding": rows}, steps=steps, options=options)


def check_prior(prior: DenoisingModel, path: str, dim: int, clip_sha256: str) -> None:
    """Refuse a prior that does not draw this CLIP's image embeddings, in one sentence."""
    space = getattr(prior, "space", None)
    if not isinstance(space, CLIPImageSpace):
        raise ValueError(f"{path} holds a model that draws no CLIP image embeddings; {PRIOR_HINT}")
    if space.dim != dim:
        raise ValueError(f"{path} draws {space.dim}-wide embeddings and the CLIP's are {dim}-wide; {PRIOR_HINT}")
    parts = (prior.hparams.get(PRETRAINED_KEY) or {}).values()
    if clip_sha256 not in {p.get("sha256") for p in parts}:
        raise ValueError(f"{path} was trained on another CLIP checkpoint than the one given; pass that prior's CLIP.")


def check_decoder(decoder: DenoisingModel, path: str, dim: int) -> ImageEmbedding:
    """The decoder's image-embedding condition; a decoder that reads no CLIP image embedding of width ``dim`` is
    refused in one sentence."""
    found = [c for c in decoder.conditions if isinstance(c, ImageEmbedding)]
    if not found:
        raise ValueError(f"{path} is not conditioned on a CLIP image embedding; {DECODER_HINT}")
    if found[0].dim != dim:
        raise ValueError(
            f"{path} reads {found[0].dim}-wide image embeddings and the CLIP's are {dim}-wide; pass a decoder "
            "trained on this CLIP."
        )
    return found[0]


#: What the decoder can be fed: the prior's image embedding, or the text embedding itself (the baseline).
EMBEDDINGS = ("prior", "text")
CLIP_HINT = "pass the checkpoint of a CLIPModel (configs/clip/*.yaml)."
PRIOR_HINT = "pass the checkpoint of a prior (configs/unclip/digits_prior.yaml) trained on this CLIP."
DECODER_HINT = (
    "pass the checkpoint of a decoder (configs/unclip/digits_decoder.yaml or digits_token_decoder.yaml) trained on "
    "this CLIP."
)
#: The decoders a pipeline takes: a diffusion model or a token prior reading an ``image_embedding``.
DECODERS = (DenoisingModel, TokenPriorModel)
#: The sampling options a pipeline hands its decoder (those the decoder takes).
PIPELINE_OPTIONS = frozenset("steps sampler eta rtol atol guidance noise deterministic temperature top_k".split())
#: What the pipeline draws without a prompt when its prior has no class prompts: the digits, as a person names them.
DEFAULT_PROMPTS = [f"a handwritten {k}" for k in range(10)]


__all__ = ["UnCLIPModel", "check_decoder", "check_prior", "sample_image_embeddings", "text_embeddings"]
