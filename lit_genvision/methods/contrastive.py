"""CLIP's symmetric InfoNCE loss (Radford et al. 2021, arXiv 2103.00020), its DDP feature gathering, and the
retrieval / zero-shot scores that evaluate it. Written after open_clip's ``src/open_clip/loss.py`` (ClipLoss,
gather_features), which was the reference; the code here is our own.

With L2-normalised image features I ∈ R^{N×D}, text features T ∈ R^{N×D} (pair i matches row i) and a learned
log temperature ℓ:

    (1)  s = exp(min(ℓ, log 100))                 the logit scale (inverse temperature), at most 100
    (2)  logits = s · I Tᵀ                         (N, N); row i scores image i against every text
    (3)  L = ½ [ CE(logits, diag) + CE(logitsᵀ, diag) ]
           = ½ [ −1/N Σ_i log softmax_j(logits)_{ij} − 1/N Σ_j log softmax_i(logits)_{ij} ] at i = j

Under DDP each of W ranks holds B = N / W pairs. ``gather_features`` all-gathers them (rank order) so the
negatives come from the global batch, and ``clip_loss`` then computes either the full (N, N) loss on every rank
(``local_loss=False``) or only this rank's B rows of each direction against all N columns (``local_loss=True``;
B × N logits instead of N × N, with labels offset by rank · B).

Which combination reproduces one process on the global batch (derived here, checked by the two-rank test):

- ``local_loss=False``: every rank's loss value *is* the single-process loss.
  ``local_loss=True``: a rank's loss is the mean over its own rows; the mean over ranks is the single-process loss.
- ``gather_with_grad=True`` (either ``local_loss``): the all-gather's backward sums, into each rank's own features,
  the gradients every rank's loss sends them; DDP then averages over ranks, so the parameter gradients equal the
  single-process gradients of L (for ``local_loss=False`` the sum is W copies of ∂L/∂f_r, divided back by W).
- ``gather_with_grad=False``: only the local rows carry gradient. With ``local_loss=False`` the tower gradients
  come out as 1/W of the single-process ones (ℓ's gradient is still equal); with ``local_loss=True`` the gradient
  from other ranks' losses through this rank's features as negatives is lost, and the result is not L's gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

INIT_LOG_SCALE = math.log(1 / 0.07)  # CLIP initialises the temperature at 0.07
MAX_LOG_SCALE = math.log(100)  # and clips the logit scale at 100 "to prevent training instability"


def logit_scale(log_scale: Tensor) -> Tensor:
    """Equation (1): s = exp(min(ℓ, log 100)), so the temperature 1/s never falls below 1/100.

    This is a functional clamp: above ``MAX_LOG_SCALE`` the gradient with respect to ``log_scale`` is zero (below it,
    ds/dℓ = s). CLIP instead clamps the *parameter* in place after each optimiser step; a model that wants that
    behaviour does ``log_scale.data.clamp_(max=MAX_LOG_SCALE)`` itself, and then this clamp never binds.
    """
    return log_scale.clamp(max=MAX_LOG_SCALE).exp()


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _gather_one(x: Tensor, with_grad: bool) -> Tensor:
    """All ranks' (B, D) rows of ``x`` stacked in rank order, (W·B, D)."""
    if with_grad:
        import torch.distributed.nn.functional as dist_fn

        return torch.cat(dist_fn.all_gather(x.contiguous()), dim=0)  # backward sums each rank's gradient home
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x  # the local rows keep their gradient; the others are constants
    return torch.cat(parts, dim=0)


def gather_features(image: Tensor, text: Tensor, *, with_grad: bool = True) -> tuple[Tensor, Tensor]:
    """Image and text features (B, D) from every rank, concatenated in rank order into (W·B, D).

    ``with_grad=True`` uses the differentiable all-gather, whose backward returns to each rank the sum of the
    gradients all ranks computed for its rows. ``with_grad=False`` gathers without autograd and puts the local
    tensor back at this rank's slot, so only the local rows receive gradient (open_clip's ``gather_with_grad=False``).
    Without an initialised process group of more than one rank the inputs are returned unchanged.
    """
    if not _distributed():
        return image, text
    return _gather_one(image, with_grad), _gather_one(text, with_grad)


def _symmetric_ce(per_image: Tensor, per_text: Tensor, labels: Tensor) -> Tensor:
    """Equation (3) on logits of image rows vs text columns and text rows vs image columns."""
    return 0.5 * (F.cross_entropy(per_image, labels) + F.cross_entropy(per_text, labels))


def clip_loss(
    image: Tensor,
    text: Tensor,
    log_scale: Tensor,
    *,
    gather: bool = True,
    gather_with_grad: bool = True,
    local_loss: bool = False,
) -> Tensor:
    """CLIP's symmetric InfoNCE, equations (1)-(3), averaged over the batch.

    ``image`` and ``text`` are (B, D) features that the caller has already L2-normalised (nothing is normalised or
    checked here); row i of each is a matching pair. ``log_scale`` is the scalar ℓ of equation (1).

    In one process (or with ``gather=False``) this is L on the given batch. Under an initialised process group with
    ``gather=True``, the negatives come from all ranks (see ``gather_features``): ``local_loss=False`` computes the
    global (N, N) loss on every rank; ``local_loss=True`` only this rank's B rows of each direction against all N
    columns (labels rank·B + i). See the module docstring for which combination matches one process's value and
    gradients after DDP averages the gradients.
    """
    scale = logit_scale(log_scale)
    if not (gather and _distributed()):
        logits = scale * image @ text.T  # (B, B)
        return _symmetric_ce(logits, logits.T, torch.arange(len(image), device=image.device))
    all_image, all_text = gather_features(image, text, with_grad=gather_with_grad)  # (N, D) each
    if local_loss:
        offset = dist.get_rank() * len(image)
        labels = torch.arange(len(image), device=image.device) + offset
        return _symmetric_ce(scale * image @ all_text.T, scale * text @ all_image.T, labels)  # (B, N) each
    logits = scale * all_image @ all_text.T  # (N, N)
    return _symmetric_ce(logits, logits.T, torch.arange(len(all_image), device=image.device))


@torch.no_grad()
def retrieval_recall(image: Tensor, text: Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Recall@k both ways on (N, D) features where pair i matches: "i2t_r{k}" is the fraction of images whose own
    text is among the k most cosine-similar texts, "t2i_r{k}" the same for texts. Features are L2-normalised here.
    A tie with the true match counts in its favour (rank = number of strictly more similar candidates)."""
    sim = F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).T  # (N, N) cosine
    true = sim.diag()
    ranks = {"i2t": (sim > true[:, None]).sum(1), "t2i": (sim.T > true[:, None]).sum(1)}  # 0 = the match is first
    return {f"{way}_r{k}": (rank < k).float().mean().item() for way, rank in ranks.items() for k in ks}


def zero_shot_logits(image: Tensor, class_text: Tensor) -> Tensor:
    """Cosine similarities (N, K) of image features (N, D) with per-class text embeddings (K, D), e.g. the
    encodings of "a photo of a {class}"; both are L2-normalised here. argmax over K is the zero-shot prediction;
    multiply by the logit scale for class probabilities."""
    return F.normalize(image, dim=-1) @ F.normalize(class_text, dim=-1).T
