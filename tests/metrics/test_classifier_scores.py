from __future__ import annotations

import math

import pytest
import torch

from lit_genvision.metrics.classifier_scores import class_coverage, inception_score, recognised_share


def test_inception_score_extremes():
    uniform = torch.full((100, 10), 0.1)
    assert inception_score(uniform, splits=2)[0] == pytest.approx(1.0)
    confident_balanced = torch.eye(10).repeat(10, 1)
    assert inception_score(confident_balanced, splits=1)[0] == pytest.approx(10.0, rel=1e-6)
    confident_one_class = torch.eye(10)[[3] * 100]
    assert inception_score(confident_one_class, splits=1)[0] == pytest.approx(1.0, rel=1e-6)


def test_recognised_share_and_coverage():
    probs = torch.tensor([[0.95, 0.05], [0.6, 0.4], [0.05, 0.95], [0.2, 0.8]])
    assert recognised_share(probs, 0.9) == 0.5
    cov = class_coverage(probs)
    assert cov["min_class_share"] == 0.5 and cov["class_entropy"] == pytest.approx(math.log(2))
    collapsed = class_coverage(torch.tensor([[0.9, 0.1]] * 5))
    assert collapsed["min_class_share"] == 0 and collapsed["class_entropy"] == 0
