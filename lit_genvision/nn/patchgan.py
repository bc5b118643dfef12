"""The N-layer PatchGAN discriminator (Isola et al. 2017, "Image-to-Image Translation with Conditional
Adversarial Networks", pix2pix, §3.2.2; taming-transformers' ``NLayerDiscriminator``, which VQGAN
trains against, Esser et al. 2021).

With L = ``layers`` and width w (``channels``), all convs 4×4 with padding 1:

    conv(C → w, stride 2) → LeakyReLU(0.2)
    for n = 1 … L−1: conv(w·m_{n−1} → w·m_n, stride 2) → norm → LeakyReLU(0.2),  m_n = min(2ⁿ, 8)
    conv(w·m_{L−1} → w·m_L, stride 1) → norm → LeakyReLU(0.2)
    conv(w·m_L → 1, stride 1)                                    → logits (B, 1, h', w')

Each logit judges one input window, so the loss averages "is this patch real?" over the image.

Receptive field and output size: with L stride-2 convs and then two stride-1 convs (kernel k = 4, so
each conv widens the window by 3 input steps of its own stride), the window of one logit is
R = 1 + 3·(1 + 2 + … + 2^(L−1) + 2·2^L) = 9·2^L − 2 pixels square (L = 3: the paper's 70×70; L = 2: 34;
L = 1: 16). Logit (i, j) sees rows 2^L·i − (3·2^L − 1) … 2^L·i − (3·2^L − 1) + R − 1 (the convs' zero
padding accounts for the negative start), and likewise columns. A stride-2 conv maps n to ⌊n/2⌋, a
stride-1 conv n to n − 1, so an S×S input gives a map of side ⌊S/2^L⌋ − 2, non-empty when S ≥ 3·2^L:
L ≤ 2 for the 16×16 digits (L = 2: 2×2 logits, L = 1: 6×6), L ≤ 3 for 32×32 (L = 3: 2×2, L = 2: 6×6).
This keeps taming's layout and padding exactly, so an L = 3 net matches it parameter for parameter;
`min_input_size` and a clear error say when an input is too small.

The window is exact only while the norm does not mix positions: BatchNorm in ``eval()`` (running
statistics) or ``norm="none"``. BatchNorm in training, and GroupNorm, normalise with statistics over
the whole map, through which every logit depends (weakly) on every pixel.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from lit_genvision.nn import ops
from lit_genvision.nn.gan import dcgan_init

PatchNorm = Literal["batch", "group", "none"]


def _norm(kind: PatchNorm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return ops.GroupNorm(ops.num_groups_for(channels, 32), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be batch, group or none, got {kind!r}.")


class PatchGANDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017): image (B, C, S, S) → logits (B, 1, ⌊S/2^L⌋ − 2, ⌊S/2^L⌋ − 2), one per
    (9·2^L − 2)-pixel window (see the module docstring).

    Args:
        in_channels: image channels C.
        channels: width of the first conv (pix2pix's ``ndf``: 64).
        layers: L, the number of stride-2 convs (pix2pix's ``n_layers``: 3, the 70×70 PatchGAN).
        norm: ``batch`` (pix2pix, taming), ``group`` (no batch coupling) or ``none``. Convs followed by a
            norm have no bias, except under ``none``.

    Initialised as taming-transformers (the DCGAN scheme): conv weights ~ N(0, 0.02), norm scales
    ~ N(1, 0.02), biases 0.
    """

    def __init__(self, in_channels: int = 1, channels: int = 64, layers: int = 3, norm: PatchNorm = "batch") -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be ≥ 1, got {layers}.")
        _norm(norm, channels)  # an unknown norm fails here, before any layer is built
        self.in_channels, self.layers = in_channels, layers
        self.receptive_field = 9 * 2**layers - 2
        self.min_input_size = 3 * 2**layers
        bias = norm == "none"
        mult = [min(2**n, 8) for n in range(layers + 1)]  # m_n
        net: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for n in range(1, layers + 1):
            stride = 2 if n < layers else 1
            net += [
                nn.Conv2d(channels * mult[n - 1], channels * mult[n], 4, stride=stride, padding=1, bias=bias),
                _norm(norm, channels * mult[n]),
                nn.LeakyReLU(0.2),
            ]
        net.append(nn.Conv2d(channels * mult[layers], 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*net)
        dcgan_init(self)

    def output_size(self, size: int) -> int:
        """Side of the logit map for an input of side ``size``: ⌊size/2^L⌋ − 2."""
        return size // 2**self.layers - 2

    def window(self, i: int) -> tuple[int, int]:
        """First and last input row (or column) that logit row (column) ``i`` sees, before clipping to the
        image: 2^L·i − (3·2^L − 1) and that + R − 1."""
        start = 2**self.layers * i - (3 * 2**self.layers - 1)
        return start, start + self.receptive_field - 1

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) < self.min_input_size:
            raise ValueError(
                f"a {self.layers}-layer PatchGAN needs inputs of at least {self.min_input_size}×{self.min_input_size} "
                f"for a non-empty logit map, got {tuple(x.shape[-2:])}; use fewer layers."
            )
        return self.net(x)  # (B, 1, ⌊H/2^L⌋ − 2, ⌊W/2^L⌋ − 2)


__all__ = ["PatchGANDiscriminator"]
