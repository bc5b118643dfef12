"""Issue 13, defect 1: the Inception weights file is untrusted input. A file whose pickle would run
code is refused by every route (explicit path, environment variable, torch hub's cache, download)
without running it; a wrong file gets one sentence; only the published SHA-256 earns the standard
extractor name. No real weights exist here: a RANDOMLY INITIALISED state dict of torch-fidelity's
architecture stands in for them (so it is "unverified" unless the digest constant is patched)."""

from __future__ import annotations

import hashlib
import io
import pickle
import warnings
from pathlib import Path

import pytest
import torch

from lit_genvision.metrics import inception
from lit_genvision.metrics.inception import (
    InceptionExtractor,
    InvalidWeightsError,
    MissingWeightsError,
    UnsafeWeightsError,
)

from .conftest import Payload


def write_malicious(path: Path, marker: Path, how: str) -> Path:
    """A weights-looking file carrying :class:`Payload`: a ``torch.save`` zip or a bare pickle."""
    if how == "torch.save":
        torch.save({"fc.weight": torch.zeros(1008, 2048), "fc.bias": Payload(marker)}, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(Payload(marker), f, protocol=2)
    return path


def one_sentence(message: str, path: Path) -> None:
    assert "\n" not in message and message.endswith(".") and str(path) in message
    assert len(message.replace(str(path), "")) < 400 and "Mixed_" not in message  # no dump of state-dict keys


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory) -> Path:
    """torch-fidelity's architecture at random init, saved as the release file is: its 472
    parameters and buffers, without BatchNorm's ``num_batches_tracked`` counters."""
    torch.manual_seed(0)
    state = {k: v for k, v in inception._network().state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("weights") / inception.WEIGHTS_FILE
    torch.save(state, path)
    return path


@pytest.fixture
def no_default_weights(monkeypatch, tmp_path):
    """No env var, and torch hub's folder is an empty temporary one."""
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints" / inception.WEIGHTS_FILE


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_the_payload_is_live_when_unpickled_unsafely(tmp_path, how):
    """Control: the files the refusal tests use really do run code under a plain unpickle."""
    marker = tmp_path / "MARKER"
    path = write_malicious(tmp_path / "evil.pth", marker, how)
    if how == "torch.save":
        torch.load(path, weights_only=False)
    else:
        with open(path, "rb") as f:
            pickle.load(f)
    assert marker.exists()


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
@pytest.mark.parametrize("route", ["explicit", "env", "hub-cache"])
def test_a_malicious_file_is_refused_without_running_it(tmp_path, monkeypatch, no_default_weights, route, how):
    marker = tmp_path / "MARKER"
    if route == "hub-cache":
        no_default_weights.parent.mkdir(parents=True)
        path = write_malicious(no_default_weights, marker, how)
    else:
        path = write_malicious(tmp_path / "evil.pth", marker, how)
    if route == "env":
        monkeypatch.setenv(inception.WEIGHTS_ENV, str(path))
    with pytest.raises(UnsafeWeightsError) as err:
        InceptionExtractor(path if route == "explicit" else None)
    one_sentence(str(err.value), path)
    assert "refused" in str(err.value) and not marker.exists()


def test_a_malicious_download_is_refused_without_running_it(tmp_path, monkeypatch, no_default_weights):
    """--download-weights goes to torch hub's folder with the full published digest as the hash
    check, then loads the file the same safe way (here the fake download skips the check)."""
    marker, calls = tmp_path / "MARKER", []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append(hash_prefix)
        write_malicious(Path(dst), marker, "torch.save")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    with pytest.raises(UnsafeWeightsError) as err:
        InceptionExtractor(download=True)
    one_sentence(str(err.value), no_default_weights)
    assert calls == [inception.STANDARD_SHA256] and not marker.exists()


def test_download_failures_are_one_sentence(monkeypatch, no_default_weights):
    def offline(url, dst, hash_prefix=None, progress=True):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(MissingWeightsError, match="could not download .*--inception-weights PATH"):
        InceptionExtractor(download=True)

    def tampered(url, dst, hash_prefix=None, progress=True):
        raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "00")')

    monkeypatch.setattr(torch.hub, "download_url_to_file", tampered)
    with pytest.raises(InvalidWeightsError, match="does not have the published SHA-256") as err:
        InceptionExtractor(download=True)
    assert "\n" not in str(err.value)


def other_network(path: Path) -> None:
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8)).state_dict(), path)


def wrong_shape(path: Path, random_weights: Path) -> None:
    state = torch.load(random_weights, weights_only=True)
    state["fc.weight"] = torch.zeros(1000, 2048)  # torchvision's 1000 classes, not TF's 1008
    torch.save(state, path)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("other-network", "not the Inception-v3 .* 472 of 472 keys missing, 7 unexpected"),
        ("wrong-shape", "not the Inception-v3 .* 0 of 472 keys missing, 0 unexpected and 1 of the wrong shape"),
        ("nested", "not a flat state dict"),
        ("text", "could not be read as a torch.save or safetensors"),
        ("empty", "could not be read as a torch.save or safetensors"),
        ("bad-safetensors", "could not be read as a safetensors file"),
    ],
)
def test_a_wrong_file_is_one_sentence(tmp_path, random_weights, case, expected):
    path = tmp_path / ("w.safetensors" if case == "bad-safetensors" else "w.pth")
    if case == "other-network":
        other_network(path)
    elif case == "wrong-shape":
        wrong_shape(path, random_weights)
    elif case == "nested":
        torch.save({"state_dict": torch.load(random_weights, weights_only=True)}, path)
    elif case == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("this is not a weights file\n")
    with pytest.raises(InvalidWeightsError, match=expected) as err:
        InceptionExtractor(path)
    assert not isinstance(err.value, UnsafeWeightsError)
    one_sentence(str(err.value), path)
    assert inception.WEIGHTS_FILE in str(err.value)


def test_features_equal_torch_fidelitys_own_loading(random_weights, tmp_path):
    """The tensors loaded here give bit-identical outputs to torch-fidelity reading the same file
    itself (its unsafe loader is fine on a file this test wrote), and a .safetensors copy too."""
    from safetensors.torch import save_file
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    reference = FeatureExtractorInceptionV3(
        "ref", list(inception.FEATURES), feature_extractor_weights_path=str(random_weights)
    )
    safetensors_copy = tmp_path / "inception.safetensors"
    save_file(torch.load(random_weights, weights_only=True), str(safetensors_copy))
    with pytest.warns(UserWarning, match="not the standard"):
        ext, from_safetensors = InceptionExtractor(random_weights), InceptionExtractor(safetensors_copy)
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    expected_feats, expected_logits = reference(x)
    feats, probs = ext(x.float() / 127.5 - 1)  # [-1, 1] back to the same uint8 image
    assert torch.equal(feats, expected_feats) and torch.allclose(probs, expected_logits.softmax(1))
    ours, theirs, safe = ext.net.state_dict(), reference.state_dict(), from_safetensors.net.state_dict()
    assert ours.keys() == theirs.keys() == safe.keys()
    assert all(torch.equal(v, theirs[k]) and torch.equal(v, safe[k]) for k, v in ours.items())


def test_no_file_is_ever_unpickled_unsafely(random_weights, monkeypatch):
    """The only ``weights_only=False`` load left is torch-fidelity's constructor reading the empty
    placeholder this module serialized in memory."""
    calls, real_load = [], torch.load

    def spy(f, *args, **kwargs):
        calls.append((f, kwargs.get("weights_only")))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    with pytest.warns(UserWarning):
        InceptionExtractor(random_weights)
    assert [w for f, w in calls if not isinstance(f, io.BytesIO)] == [True]
    assert all(f.getvalue() == _empty_dict_bytes() for f, w in calls if isinstance(f, io.BytesIO))


def _empty_dict_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({}, buf)
    return buf.getvalue()


def test_an_unknown_digest_gets_the_unverified_name(random_weights, monkeypatch):
    hashed = []
    real_sha = inception.sha256_of
    monkeypatch.setattr(inception, "sha256_of", lambda p: hashed.append(p) or real_sha(p))
    with pytest.warns(UserWarning, match="not the standard .* not ranked with the standard ones") as record:
        ext = InceptionExtractor(random_weights)
    digest = hashlib.sha256(random_weights.read_bytes()).hexdigest()
    assert hashed == [random_weights]  # streamed once per load
    assert (ext.sha256, ext.verified, ext.weights_path) == (digest, False, random_weights)
    assert ext.name == f"inception-v3-tf2015-unverified-sha256-{digest[:12]}"
    assert len(record) == 1 and "\n" not in str(record[0].message)


def test_the_published_digest_gets_the_standard_name(random_weights, monkeypatch):
    digest = hashlib.sha256(random_weights.read_bytes()).hexdigest()
    monkeypatch.setattr(inception, "STANDARD_SHA256", digest)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ext = InceptionExtractor(random_weights)
    assert ext.verified and ext.name == "inception-v3-tf2015" and ext.sha256 == digest
    assert not [w for w in record if "not the standard" in str(w.message)]


def test_the_standard_digest_matches_the_file_name():
    """torch hub's convention: the release file's name carries the first 8 hex of its SHA-256."""
    assert inception.WEIGHTS_FILE.removesuffix(".pth").endswith(inception.STANDARD_SHA256[:8])
    assert len(inception.STANDARD_SHA256) == 64
