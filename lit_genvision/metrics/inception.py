"""The standard Inception-v3 feature extractor of FID / KID / IS (torch-fidelity's port of the
TensorFlow 2015-12-05 graph), loaded from a local weights file when offline.

There is no fallback: without the weights file and without a network, FID is not computed and
one sentence says which file is needed and where to put it.

The weights are never unpickled with ``weights_only=False``: torch-fidelity's own loader does that
(a crafted file would run code), so the network is built with an empty in-memory placeholder and
the tensors, read here with ``torch.load(..., weights_only=True)`` or from a ``.safetensors`` file,
are checked against the architecture and loaded into it. The same holds for every source: an
explicit path, ``$LIT_GENVISION_INCEPTION_WEIGHTS``, torch hub's cache and ``--download-weights``.

Each load streams the file's SHA-256 once. Only the published digest of torch-fidelity's release
file (:data:`STANDARD_SHA256`) gives the extractor the standard name ``inception-v3-tf2015``; any
other file (a re-save, a ``.safetensors`` conversion, a random stand-in) is named
``inception-v3-tf2015-unverified-sha256-<12 hex>``, so its scores and cached reference statistics
are never mixed with the standard ones.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from lit_genvision.checkpoint_io import sha256_of
from lit_genvision.data.base import to_uint8

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_ENV = "LIT_GENVISION_INCEPTION_WEIGHTS"
#: SHA-256 of torch-fidelity's v0.2.0 release file ``weights-inception-2015-12-05-6726825d.pth``
#: (95,628,359 bytes). The file name carries its first 8 hex digits (torch hub's convention); the
#: full digest is the one published for the byte-identical ``pt_inception-2015-12-05-6726825d.pth``
#: of pytorch-fid (genforce's ``models/inception_model.py`` pins it for that download) and recorded
#: for torch-fidelity's file by independent projects that pin it before computing FID.
STANDARD_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
NAME = "inception-v3-tf2015"
FEATURES = ("2048", "logits_unbiased")


class MissingWeightsError(FileNotFoundError):
    """The Inception weights are not on this machine and could not be downloaded."""


class InvalidWeightsError(ValueError):
    """A weights file that is not torch-fidelity's Inception-v3 state dict."""


class UnsafeWeightsError(InvalidWeightsError):
    """A weights file that holds pickled objects beyond tensors (loading it could run code)."""


def default_weights_path() -> Path:
    """Where torch hub keeps (and ``--download-weights`` puts) the standard weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def find_weights(path: str | Path | None = None) -> Path | None:
    """The first of: the given path, $LIT_GENVISION_INCEPTION_WEIGHTS, torch hub's cache."""
    for candidate in (path, os.environ.get(WEIGHTS_ENV), default_weights_path()):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    if path:
        raise MissingWeightsError(f"Inception weights not found at {path}; pass the path of {WEIGHTS_FILE}.")
    return None


def _advice() -> str:
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return f"pass {WEIGHTS_FILE} ({URL_INCEPTION_V3}) or a .safetensors copy of it"


def load_state_dict_safely(path: str | Path) -> dict[str, Tensor]:
    """The tensors of ``path`` without running any code it may hold: ``.safetensors`` through
    safetensors, anything else through ``torch.load(..., weights_only=True)``.

    Raises :class:`UnsafeWeightsError` when the file pickles more than tensors and plain
    containers, and :class:`InvalidWeightsError` when it is not a weights file or not a flat
    mapping of names to tensors.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except Exception as err:  # safetensors raises its own SafetensorError, OSError, ...
            raise InvalidWeightsError(
                f"{path} could not be read as a safetensors file ({type(err).__name__}); {_advice()}."
            ) from None
    else:
        try:
            with warnings.catch_warnings():  # torch's notes on pickle protocols are not the user's concern
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise UnsafeWeightsError(
                f"refused to load {path}: it is not a plain tensor file (reading it would unpickle arbitrary "
                f"objects, which can run code); {_advice()}."
            ) from None
        except Exception as err:  # not a torch.save file at all: KeyError, EOFError, RuntimeError, ...
            raise InvalidWeightsError(
                f"{path} could not be read as a torch.save or safetensors weights file ({type(err).__name__}); "
                f"{_advice()}."
            ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise InvalidWeightsError(
            f"{path} is not a flat state dict of parameter names to tensors (it holds a {type(state).__name__}); "
            f"{_advice()}."
        )
    return dict(state)


def _network():
    """torch-fidelity's Inception-v3 with uninitialised-from-file weights: its constructor is handed
    an empty state dict serialized here in memory, so it never opens or downloads a file."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _Network(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
            if not state_dict:  # the placeholder torch-fidelity's constructor loads
                return None
            return super().load_state_dict(state_dict, strict=strict, assign=assign)

    placeholder = io.BytesIO()
    torch.save({}, placeholder)
    placeholder.seek(0)
    return _Network("inception-v3-compat", list(FEATURES), feature_extractor_weights_path=placeholder)


def _check_architecture(path: Path, state: dict[str, Tensor], expected: dict[str, Tensor]) -> None:
    """One sentence when ``state`` does not fit the network. BatchNorm's ``num_batches_tracked``
    counters are optional (the release file has none; they play no part in evaluation)."""
    required = {k for k in expected if not k.endswith("num_batches_tracked")}
    missing = required - state.keys()
    unexpected = state.keys() - expected.keys()
    wrong_shape = [k for k in state.keys() & expected.keys() if state[k].shape != expected[k].shape]
    if missing or unexpected or wrong_shape:
        raise InvalidWeightsError(
            f"{path} is not the Inception-v3 (TF 2015-12-05) state dict torch-fidelity expects: "
            f"{len(missing)} of {len(required)} keys missing, {len(unexpected)} unexpected and "
            f"{len(wrong_shape)} of the wrong shape; {_advice()}."
        )


def download_weights() -> Path:
    """Download the standard file into torch hub's cache, refusing it unless its SHA-256 is
    :data:`STANDARD_SHA256` (it is then loaded the same safe way as a local file)."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    dst = default_weights_path()
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(URL_INCEPTION_V3, str(dst), hash_prefix=STANDARD_SHA256, progress=True)
    except OSError as err:  # no network (URLError is an OSError) or an unwritable cache
        raise MissingWeightsError(
            f"could not download {WEIGHTS_FILE} ({err}); fetch it where a network is available and pass "
            "--inception-weights PATH."
        ) from None
    except RuntimeError as err:  # torch hub's hash check; it has already deleted the download
        raise InvalidWeightsError(
            f"the downloaded {WEIGHTS_FILE} does not have the published SHA-256 {STANDARD_SHA256} ({err}); "
            "fetch it again or pass a trusted copy with --inception-weights PATH."
        ) from None
    return dst


class InceptionExtractor:
    """2048-d pool features and the 1008-way ``logits_unbiased`` softmax of images in [-1, 1].

    ``weights_path`` and ``sha256`` say which file was loaded; ``verified`` is true when its digest
    is :data:`STANDARD_SHA256`, and ``name`` (recorded with every score and used in the reference
    statistics' cache key) is ``inception-v3-tf2015`` then, else
    ``inception-v3-tf2015-unverified-sha256-<first 12 hex of the digest>``.
    """

    dim = 2048

    def __init__(self, weights: str | Path | None = None, download: bool = False) -> None:
        path = find_weights(weights)
        if path is None:
            if not download:
                from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

                raise MissingWeightsError(
                    f"FID/KID/IS need the Inception weights {WEIGHTS_FILE}: download {URL_INCEPTION_V3} and pass "
                    f"--inception-weights PATH, set {WEIGHTS_ENV}, or put it in {default_weights_path().parent} "
                    "(or add --download-weights when online)."
                )
            path = download_weights()
        self.weights_path = path
        self.sha256 = sha256_of(path)
        self.verified = self.sha256 == STANDARD_SHA256
        state = load_state_dict_safely(path)
        self.net = _network()
        _check_architecture(path, state, self.net.state_dict())
        self.net.load_state_dict(state, strict=False)
        self.name = NAME if self.verified else f"{NAME}-unverified-sha256-{self.sha256[:12]}"
        if not self.verified:
            warnings.warn(
                f"{path} is not the standard {WEIGHTS_FILE} (SHA-256 {self.sha256[:12]}…, expected "
                f"{STANDARD_SHA256[:12]}…); its scores are recorded under extractor {self.name} and not "
                "ranked with the standard ones.",
                stacklevel=2,
            )

    @torch.no_grad()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        x = to_uint8(images.cpu())
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        feats, logits = self.net(x)
        return feats, logits.softmax(dim=1)
