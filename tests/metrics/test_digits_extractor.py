from __future__ import annotations

import torch

from lit_genvision.metrics import digits
from lit_genvision.metrics.digits import load_digits_extractor


def test_classifier_is_accurate_and_cached(monkeypatch):
    ext = load_digits_extractor(16)
    assert ext.test_accuracy >= 0.97
    calls = []
    monkeypatch.setattr(digits, "train_digits_classifier", lambda *a, **k: calls.append(1))
    again = load_digits_extractor(16)  # from the cache: no training
    assert not calls and again.test_accuracy == ext.test_accuracy
    for a, b in zip(ext.net.state_dict().values(), again.net.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_features_and_probabilities_of_any_size():
    ext = load_digits_extractor(16)
    feats, probs = ext(torch.rand(6, 1, 32, 32) * 2 - 1)
    assert feats.shape == (6, 64) and probs.shape == (6, 10)
    torch.testing.assert_close(probs.sum(1), torch.ones(6))


def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_GENVISION_CACHE", str(tmp_path))
    path = tmp_path / f"digits-cnn-v{digits.VERSION}-16px-seed0.safetensors"
    path.write_bytes(b"broken")
    calls = []
    real = digits.train_digits_classifier

    def counted(*a, **k):
        calls.append(1)
        return real(*a, epochs=1, **k)

    monkeypatch.setattr(digits, "train_digits_classifier", counted)
    ext = load_digits_extractor(16)
    assert calls and path.is_file() and 0 <= ext.test_accuracy <= 1


def test_training_the_classifier_works_under_no_grad_and_leaves_the_callers_rng_alone():
    """A callback builds the extractor mid-training, under no_grad, on a fresh machine (no cache)."""
    from lit_genvision.metrics.digits import train_digits_classifier

    torch.manual_seed(123)
    before = torch.get_rng_state()
    with torch.no_grad():
        net, acc = train_digits_classifier(epochs=1)
    assert acc > 0.5
    assert torch.equal(torch.get_rng_state(), before)
