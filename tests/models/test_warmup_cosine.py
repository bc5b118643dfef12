"""``WarmupCosine``: a linear warm-up, then a half cosine to the final share, held there."""

from __future__ import annotations

import math

import pytest
import torch

from lit_genvision.models import WarmupCosine


def rates(steps: int, **kwargs) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    schedule = WarmupCosine(opt, **kwargs)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return out


def test_warmup_then_half_cosine_to_the_final_share_then_held():
    lr = rates(130, warmup_steps=10, total_steps=110, final=0.1)
    assert lr[0] == pytest.approx(2.0 * 1 / 10) and lr[9] == pytest.approx(2.0)
    assert lr[10] == pytest.approx(2.0)  # the peak, at the start of the decay
    assert lr[60] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))  # half way: the mean of peak and final
    k = 85
    assert lr[k] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (k - 10) / 100))))
    assert lr[110:] == pytest.approx([0.2] * 20)


def test_total_steps_must_come_after_the_warm_up():
    with pytest.raises(ValueError, match="total_steps"):
        rates(1, warmup_steps=10, total_steps=10)
