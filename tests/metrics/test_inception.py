"""The standard FID path, offline. No real Inception weights can be downloaded here, so this test
writes a RANDOMLY INITIALISED state dict of torch-fidelity's Inception-v3 architecture to a local
file: it proves the loading and feature path, not the values of real FID."""

from __future__ import annotations

import pytest
import torch

from lit_genvision.metrics import inception
from lit_genvision.metrics.inception import InceptionExtractor, MissingWeightsError


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    original_url, original_load = fe.load_state_dict_from_url, fe.FeatureExtractorInceptionV3.load_state_dict
    fe.load_state_dict_from_url = lambda *a, **k: {}
    fe.FeatureExtractorInceptionV3.load_state_dict = lambda self, sd, *a, **k: None
    try:
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("random", ["2048"])
    finally:
        fe.load_state_dict_from_url, fe.FeatureExtractorInceptionV3.load_state_dict = original_url, original_load
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
    ext = InceptionExtractor()
    feats, probs = ext(torch.rand(3, 1, 16, 16) * 2 - 1)  # grey digits become RGB
    assert feats.shape == (3, 2048) and probs.shape == (3, 1008)
    assert torch.isfinite(feats).all()
