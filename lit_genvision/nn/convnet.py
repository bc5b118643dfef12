"""Convolutional classifiers: the lecture's first model (image → class)."""

from __future__ import annotations

from torch import Tensor, nn


class SmallConvNet(nn.Module):
    """Two conv-conv-pool stages and a two-layer head, for small grey or colour images.

    (B, C, H, W) → logits (B, num_classes); ``features`` gives the penultimate ``feature_dim``
    activations, the space digits-FD measures distances in.
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, width: int = 32, feature_dim: int = 64, dropout: float = 0.2
    ) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * w * 16, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
        self.in_channels, self.feature_dim = in_channels, feature_dim

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)  # (B, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))  # (B, num_classes)


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU())


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(_conv_bn(channels, channels), _conv_bn(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class FastResNet(nn.Module):
    """The small ResNet of the CIFAR-10 speed runs (Page 2018, "How to train your ResNet";
    Keller Jordan's airbench): prep conv, three conv-pool stages with residual blocks on the first
    and last, global max pool, a linear head scaled by ``logit_scale``.

    (B, 3, 32, 32) → logits (B, num_classes).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        widths: tuple[int, int, int] = (64, 256, 256),
        prep: int = 32,
        logit_scale: float = 1 / 9,
    ) -> None:
        super().__init__()
        a, b, c = widths
        self.body = nn.Sequential(
            _conv_bn(in_channels, prep),
            _conv_bn(prep, a),
            nn.MaxPool2d(2),
            _Residual(a),
            _conv_bn(a, b),
            nn.MaxPool2d(2),
            _conv_bn(b, c),
            nn.MaxPool2d(2),
            _Residual(c),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(c, num_classes, bias=False)
        self.in_channels, self.feature_dim, self.logit_scale = in_channels, c, logit_scale

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x)) * self.logit_scale
