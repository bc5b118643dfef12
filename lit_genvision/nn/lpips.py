"""LPIPS, the learned perceptual distance (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric", arXiv 1801.03924, eq. 1), VGG16 variant, weights read from local files.

With F_l the VGG16 activations at l ∈ {relu1_2, relu2_2, relu3_3, relu4_3, relu5_3} (C_l = 64, 128, 256,
512, 512 channels, H_l × W_l positions) and w_l ≥ 0 the learned per-channel weights of layer l:

    s(x)          = (x − shift) / scale                       shift = (−.030, −.088, −.188),
                                                              scale = (.458, .448, .450), x ∈ [−1, 1]
    f̂_l(x)_hw     = F_l(s(x))_hw / (‖F_l(s(x))_hw‖₂ + 1e-10)  unit length over channels at each h, w
    d(x, y)       = Σ_l 1/(H_l W_l) Σ_hw Σ_c w_l,c (f̂_l(x)_hwc − f̂_l(y)_hwc)²

so d(x, x) = 0, d ≥ 0 and d(x, y) = d(y, x). The module holds no trainable state: both files are
frozen weights, it stays in eval mode and none of its parameters ask for a gradient, while the
gradient to the images flows (taming-transformers' VQGAN adds d(x, x̂) to its loss with weight 1.0).

Nothing is downloaded. Two files are read:

- ``vgg_weights``: torchvision's ImageNet VGG16 state dict (``vgg16-397923af.pth``), keys
  ``features.N.weight`` / ``features.N.bias`` for the convs N = 0, 2, 5, 7, 10, 12, 14, 17, 19, 21,
  24, 26, 28 (``classifier.*`` and any other key is ignored).
- ``lpips_weights``: the lpips package's linear layers (``lpips/weights/v0.1/vgg.pth``, or taming's
  ``vgg.pth``), keys ``lin0.model.1.weight`` … ``lin4.model.1.weight`` of shape (1, C_l, 1, 1)
  (``linK.model.0.weight``, the layout without dropout, is accepted too).

Either may be a ``.safetensors`` file with the same keys. The trunk keeps torchvision's layer indices
(``features.N``), so the vgg file loads key for key.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

# torchvision's vgg16().features up to relu5_3: convs are 3×3 with padding 1, "M" is a 2×2 max-pool.
_VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# Index into `features` of the ReLU that ends each LPIPS slice (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3).
_TAPS = (3, 8, 15, 22, 29)
CHANNELS = (64, 128, 256, 512, 512)


def _vgg16_features() -> nn.Sequential:
    """torchvision's ``vgg16().features[:30]``: same indices, so ``features.N.*`` keys load unchanged."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, int(v), kernel_size=3, padding=1), nn.ReLU()]
            in_ch = int(v)
    return nn.Sequential(*layers)


def _read(path: str | Path, expected: str) -> dict[str, Tensor]:
    """Load a state dict from ``.pth``/``.pt`` (``torch.load``, weights only) or ``.safetensors``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LPIPS weight file {path} does not exist; {expected}.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt or foreign file: say which one and what belongs there
        raise ValueError(f"LPIPS could not read {path} as a state dict ({type(err).__name__}); {expected}.") from err
    if not isinstance(state, dict):
        raise ValueError(f"LPIPS weight file {path} holds a {type(state).__name__}, not a state dict; {expected}.")
    return state


def _take(
    state: dict[str, Tensor], keys: dict[str, str], shapes: dict[str, tuple[int, ...]], path: str | Path, expected: str
) -> dict[str, Tensor]:
    """Pick ``keys`` (our name → file key) out of ``state``, checking presence and shape in one message."""
    missing = [k for k in keys.values() if k not in state]
    if missing:
        raise ValueError(
            f"LPIPS weight file {path} lacks {len(missing)} expected key(s) (first: {missing[0]!r}); {expected}."
        )
    out = {}
    for ours, theirs in keys.items():
        t = state[theirs]
        if not isinstance(t, Tensor) or tuple(t.shape) != shapes[ours]:
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(
                f"LPIPS weight file {path} has {theirs!r} of shape {got}, expected {shapes[ours]}; {expected}."
            )
        out[ours] = t
    return out


VGG_EXPECTED = (
    "pass torchvision's vgg16-397923af.pth (the VGG16 state dict with keys features.0.weight … features.28.bias)"
)
LIN_EXPECTED = "pass the lpips package's weights/v0.1/vgg.pth (keys lin0.model.1.weight … lin4.model.1.weight)"


class LPIPS(nn.Module):
    """Frozen VGG16 LPIPS distance, ``forward(x, y) -> (B,)`` for images (B, C, H, W) in [−1, 1], C ∈ {1, 3}.

    Args:
        vgg_weights: torchvision's VGG16 state dict file (``vgg16-397923af.pth``).
        lpips_weights: the lpips package's linear-layer file (``weights/v0.1/vgg.pth``).

    Images of one channel are repeated to three. VGG's four max-pools need H, W ≥ 16 (relu5_3 is then
    1×1); smaller inputs raise.
    """

    def __init__(self, vgg_weights: str | Path, lpips_weights: str | Path) -> None:
        super().__init__()
        self.features = _vgg16_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

        vgg_ours = self.features.state_dict()
        vgg = _take(
            _read(vgg_weights, VGG_EXPECTED),
            {k: f"features.{k}" for k in vgg_ours},
            {k: tuple(v.shape) for k, v in vgg_ours.items()},
            vgg_weights,
            VGG_EXPECTED,
        )
        self.features.load_state_dict(vgg)

        lin_state = _read(lpips_weights, LIN_EXPECTED)
        # The released weights were trained with dropout before the conv (Sequential index 1).
        idx = 1 if "lin0.model.1.weight" in lin_state or "lin0.model.0.weight" not in lin_state else 0
        lins = _take(
            lin_state,
            {f"{i}.weight": f"lin{i}.model.{idx}.weight" for i in range(len(CHANNELS))},
            {f"{i}.weight": (1, c, 1, 1) for i, c in enumerate(CHANNELS)},
            lpips_weights,
            LIN_EXPECTED,
        )
        if any((w < 0).any() for w in lins.values()):
            raise ValueError(f"LPIPS weight file {lpips_weights} has negative linear weights; {LIN_EXPECTED}.")
        self.lins.load_state_dict(lins)

        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> LPIPS:
        """Always eval: the weights are a fixed metric, never trained alongside the model that uses it."""
        return super().train(False)

    def _normalised_features(self, x: Tensor) -> list[Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (B, 3, H, W)
        h = (x - self.shift) / self.scale  # s(x)
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _TAPS:  # (B, C_l, H_l, W_l) → unit length over channels
                out.append(h / (h.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """d(x, y) of shape (B,) for x, y of shape (B, C, H, W) in [−1, 1], C ∈ {1, 3}."""
        if x.shape != y.shape:
            raise ValueError(f"LPIPS compares images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}.")
        if x.ndim != 4 or x.shape[1] not in (1, 3) or min(x.shape[-2:]) < 16:
            raise ValueError(f"LPIPS takes (B, 1 or 3, H, W) images with H, W ≥ 16, got {tuple(x.shape)}.")
        b = x.shape[0]
        d = x.new_zeros(b)
        for f, lin in zip(self._normalised_features(torch.cat([x, y])), self.lins, strict=True):  # one VGG pass
            fx, fy = f[:b], f[b:]  # (B, C_l, H_l, W_l) each
            d = d + lin((fx - fy).pow(2)).mean(dim=(1, 2, 3))  # w_l-weighted, (B, 1, H_l, W_l) → spatial mean → (B,)
        return d
