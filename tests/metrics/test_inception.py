"""The standard FID path, offline. No real Inception weights can be downloaded here, so this test
writes a RANDOMLY INITIALISED state dict of torch-fidelity's Inception-v3 architecture to a local
file: it proves the loading and feature path, not the values of real FID (and, not being the
published file, it is loaded under the unverified extractor name)."""

from __future__ import annotations

import pytest
import torch

from lit_genvision.metrics import inception
from lit_genvision.metrics.inception import InceptionExtractor, MissingWeightsError


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    torch.manual_seed(0)
    net = inception._network()  # random init; never reads a file
    path = tmp_path_factory.mktemp("weights") / inception.WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    return path


def test_missing_weights_name_the_file_and_where_to_put_it(monkeypatch, tmp_path):
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(inception, "default_weights_path", lambda: tmp_path / "none" / inception.WEIGHTS_FILE)
    with pytest.raises(MissingWeightsError, match=f"need the Inception weights {inception.WEIGHTS_FILE}"):
        InceptionExtractor()
    with pytest.raises(MissingWeightsError, match="not found at"):
        InceptionExtractor(tmp_path / "nope.pth")


def test_features_from_a_local_weights_file(random_weights, monkeypatch):
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(random_weights))
    with pytest.warns(UserWarning, match="not the standard"):
        ext = InceptionExtractor()
    assert not ext.verified and ext.name == f"inception-v3-tf2015-unverified-sha256-{ext.sha256[:12]}"
    feats, probs = ext(torch.rand(3, 1, 16, 16) * 2 - 1)  # grey digits become RGB
    assert feats.shape == (3, 2048) and probs.shape == (3, 1008)
    assert torch.isfinite(feats).all()
