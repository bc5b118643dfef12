"""Conditional flow matching (Lipman et al. 2023, eq. 9; Liu et al. 2023):

L = E_{t, x_0, x_1} ‖v_θ(x_t, t) − u_t(x_t | x_0, x_1)‖²,  x_1 ~ N(0, I)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_genvision.methods.diffusion import Net, randn_like
from lit_genvision.methods.flow.paths import AffinePath, sample_times

TIME_SCALE = 1000.0  # the network sees t·1000, the range its sinusoidal embedding was built for


def flow_matching_loss(
    net: Net,
    path: AffinePath,
    x0: Tensor,
    *,
    cond: dict | None = None,
    time_sampling: str = "uniform",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Mean-squared error between the predicted and the conditional target velocity."""
    t = sample_times(len(x0), time_sampling, generator=generator, device=x0.device)
    x1 = randn_like(x0, generator)
    x_t = path.sample(x0, x1, t)
    return F.mse_loss(net(x_t, t * TIME_SCALE, cond), path.velocity(x0, x1, t))
