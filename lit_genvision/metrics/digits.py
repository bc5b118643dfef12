"""digits-FD: the Fréchet distance in the penultimate features of the project's own digits
classifier, the embedded, offline stand-in for FID on the digits set.

The classifier (``SmallConvNet``) is trained deterministically on the digits train split on first
use and cached as safetensors with its test accuracy; its features, class probabilities,
recognised share and class coverage score any generator's samples.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from lit_genvision.data.base import to_unit_range
from lit_genvision.data.digits import load_digits_uint8, split_indices
from lit_genvision.methods.augment import flip_crop
from lit_genvision.nn.convnet import SmallConvNet

VERSION = 1  # bump when the classifier or its training changes: old caches are then ignored


def cache_dir() -> Path:
    """Where extractors and reference statistics are cached (``LIT_GENVISION_CACHE`` or ~/.cache)."""
    root = os.environ.get("LIT_GENVISION_CACHE") or Path.home() / ".cache" / "lit_genvision"
    return Path(root)


def fit_classifier(
    build: Callable[[], nn.Module], x: Tensor, y: Tensor, *, epochs: int, lr: float, seed: int,
    prepare: Callable[[Tensor, torch.Generator], Tensor], batch: int = 64,
) -> nn.Module:  # fmt: skip
    """``build()`` trained on (x, y) by AdamW (weight decay 1e-4) under a one-cycle schedule peaking at ``lr``, batches
    of ``batch`` drawn without replacement, cross-entropy with label smoothing 0.05; ``prepare(x_b, g)`` turns a
    batch of ``x`` into the network's input. Deterministic for a ``seed``, on its own RNG stream and with gradients
    on whoever calls it (a callback under no_grad mid-training). Returned in eval mode."""
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        net = build()
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * (len(x) // batch))
        net.train()
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=g)
            for i in range(len(x) // batch):
                b = perm[i * batch : (i + 1) * batch]
                loss = F.cross_entropy(net(prepare(x[b], g)), y[b], label_smoothing=0.05)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    return net.eval()


def train_digits_classifier(image_size: int = 16, seed: int = 0, epochs: int = 30) -> tuple[SmallConvNet, float]:
    """Train the feature network on the digits train split (the same split every DataModule uses)
    with ±1-pixel shifts; deterministic for a given seed. Returns the net and its test accuracy."""
    images, labels = load_digits_uint8(image_size)
    idx = split_indices(len(images), 0.1, 0.2, seed=0)
    x_train, y_train = to_unit_range(images[idx["train"]]), labels[idx["train"]]
    x_test, y_test = to_unit_range(images[idx["test"]]), labels[idx["test"]]
    shift = max(1, image_size // 16)
    net = fit_classifier(
        lambda: SmallConvNet(1, 10, width=32, feature_dim=64), x_train, y_train, epochs=epochs, lr=2e-3, seed=seed,
        prepare=lambda xb, g: flip_crop(xb, pad=shift, flip=False, generator=g),
    )  # fmt: skip
    with torch.no_grad():
        acc = (net(x_test).argmax(1) == y_test).double().mean().item()
    return net, acc


class DigitsExtractor:
    """Features (B, 64) and class probabilities (B, 10) of images in [-1, 1] (resized to the
    classifier's resolution when they differ)."""

    def __init__(self, net: SmallConvNet, image_size: int, test_accuracy: float) -> None:
        self.net, self.image_size, self.test_accuracy = net.eval(), image_size, test_accuracy
        self.name = f"digits-cnn-v{VERSION}-{image_size}px"
        self.dim = net.feature_dim

    @torch.no_grad()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        x = images.float().cpu()
        if x.shape[1] == 3:  # an RGB generator scored on digits: use luminance
            x = x.mean(1, keepdim=True)
        if x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True)
        feats = self.net.features(x)
        return feats, self.net.head(feats).softmax(dim=1)


def load_digits_extractor(image_size: int = 16, seed: int = 0) -> DigitsExtractor:
    """The cached digits classifier, trained on first use (about ten seconds on a CPU)."""
    path = cache_dir() / f"digits-cnn-v{VERSION}-{image_size}px-seed{seed}.safetensors"
    net = SmallConvNet(1, 10, width=32, feature_dim=64)
    if path.is_file():
        try:
            net.load_state_dict(load_file(path))
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                acc = float(f.metadata()["test_accuracy"])
            return DigitsExtractor(net, image_size, acc)
        except Exception:  # a damaged cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
    net, acc = train_digits_classifier(image_size, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(net.state_dict(), str(tmp), metadata={"test_accuracy": f"{acc:.6f}"})
    tmp.replace(path)
    return DigitsExtractor(net, image_size, acc)
