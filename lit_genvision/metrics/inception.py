"""The standard Inception-v3 feature extractor of FID / KID / IS (torch-fidelity's port of the
TensorFlow 2015-12-05 graph), loaded from a local weights file when offline.

There is no fallback: without the weights file and without a network, FID is not computed and
one sentence says which file is needed and where to put it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from lit_genvision.data.base import to_uint8

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_ENV = "LIT_GENVISION_INCEPTION_WEIGHTS"


class MissingWeightsError(FileNotFoundError):
    """The Inception weights are not on this machine and could not be downloaded."""


def default_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def find_weights(path: str | Path | None = None) -> Path | None:
    """The first of: the given path, $LIT_GENVISION_INCEPTION_WEIGHTS, torch hub's cache."""
    for candidate in (path, os.environ.get(WEIGHTS_ENV), default_weights_path()):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    if path:
        raise MissingWeightsError(f"Inception weights not found at {path}; pass the path of {WEIGHTS_FILE}.")
    return None


class InceptionExtractor:
    """2048-d pool features and the 1008-way ``logits_unbiased`` softmax of images in [-1, 1]."""

    dim = 2048

    def __init__(self, weights: str | Path | None = None, download: bool = False) -> None:
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

        path = find_weights(weights)
        if path is None and not download:
            raise MissingWeightsError(
                f"FID/KID/IS need the Inception weights {WEIGHTS_FILE}: download {URL_INCEPTION_V3} and pass "
                f"--inception-weights PATH, set {WEIGHTS_ENV}, or put it in {default_weights_path().parent} "
                "(or add --download-weights when online)."
            )
        try:
            self.net = FeatureExtractorInceptionV3(
                "inception-v3-compat",
                ["2048", "logits_unbiased"],
                feature_extractor_weights_path=str(path) if path else None,
            )
        except OSError as err:  # no network for the download
            raise MissingWeightsError(
                f"could not download {WEIGHTS_FILE} ({err}); fetch it where a network is available and pass "
                "--inception-weights PATH."
            ) from None
        self.name = "inception-v3-tf2015"

    @torch.no_grad()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        x = to_uint8(images.cpu())
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        feats, logits = self.net(x)
        return feats, logits.softmax(dim=1)
