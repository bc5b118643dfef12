"""Noise schedules against their closed forms; one base class every schedule's test subclasses."""

from __future__ import annotations

import math

import pytest
import torch

from lit_genvision.methods import CosineSchedule, LinearSchedule, OffsetCosineSchedule, ScaledLinearSchedule


class ScheduleContract:
    """Properties every schedule must have."""

    def make(self, timesteps: int = 1000):
        raise NotImplementedError

    def test_alpha_bar_is_product_of_one_minus_beta(self):
        s = self.make()
        torch.testing.assert_close(s.alpha_bars, torch.cumprod(1 - s.betas, 0), rtol=1e-12, atol=1e-14)

    def test_alpha_bar_decreases_strictly_within_unit_interval(self):
        ab = self.make().alpha_bars
        assert (ab[1:] < ab[:-1]).all()
        assert 0 < ab[-1] and ab[0] < 1

    def test_betas_are_valid_variances(self):
        b = self.make().betas
        assert (b > 0).all() and (b < 1).all()

    def test_lengths(self):
        s = self.make(37)
        assert len(s.betas) == len(s.alphas) == len(s.alpha_bars) == 37


class TestLinear(ScheduleContract):
    def make(self, timesteps: int = 1000):
        return LinearSchedule(timesteps)

    def test_endpoints_and_linearity(self):
        b = self.make().betas
        assert b[0].item() == pytest.approx(1e-4, rel=1e-9)
        assert b[-1].item() == pytest.approx(0.02, rel=1e-9)
        diffs = b[1:] - b[:-1]
        torch.testing.assert_close(diffs, torch.full_like(diffs, (0.02 - 1e-4) / 999), rtol=1e-6, atol=1e-12)


class TestScaledLinear(ScheduleContract):
    def make(self, timesteps: int = 1000):
        return ScaledLinearSchedule(timesteps, 0.00085, 0.012)

    def test_square_roots_of_betas_are_linear(self):
        b = self.make().betas
        assert b[0].item() == pytest.approx(0.00085, rel=1e-9) and b[-1].item() == pytest.approx(0.012, rel=1e-9)
        root = b.sqrt()
        diffs = root[1:] - root[:-1]
        step = (0.012**0.5 - 0.00085**0.5) / 999
        torch.testing.assert_close(diffs, torch.full_like(diffs, step), rtol=1e-6, atol=1e-12)

    def test_matches_diffusers_scaled_linear(self):
        diffusers = pytest.importorskip("diffusers")
        reference = diffusers.DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
        torch.testing.assert_close(self.make().betas.float(), reference.betas, rtol=1e-5, atol=1e-8)


class TestCosine(ScheduleContract):
    def make(self, timesteps: int = 1000):
        return CosineSchedule(timesteps)

    def test_matches_nichol_dhariwal_closed_form(self):
        T, s = 1000, 0.008
        f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        ab = self.make().alpha_bars
        for t in [1, 10, 250, 500, 900]:  # before β is clipped at 0.999
            assert ab[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-9)

    def test_changes_less_than_linear_at_the_start(self):
        assert (self.make().alpha_bars[:100] > LinearSchedule().alpha_bars[:100]).all()


class TestOffsetCosine(ScheduleContract):
    def make(self, timesteps: int = 1000):
        return OffsetCosineSchedule(timesteps)

    def test_signal_rate_runs_from_max_to_min(self):
        s = self.make()
        signal = s.alpha_bars.sqrt()
        assert signal[-1].item() == pytest.approx(0.02, rel=1e-9)
        start, end = math.acos(0.95), math.acos(0.02)
        assert signal[0].item() == pytest.approx(math.cos(start + (end - start) / 1000), rel=1e-9)
        theta = torch.arccos(signal)
        torch.testing.assert_close(
            theta[1:] - theta[:-1], torch.full((999,), (end - start) / 1000, dtype=torch.float64)
        )

    def test_rejects_bad_rates(self):
        with pytest.raises(ValueError, match="min_signal_rate"):
            OffsetCosineSchedule(max_signal_rate=0.5, min_signal_rate=0.6)
