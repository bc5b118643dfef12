"""LPIPS (Zhang et al. 2018) from local weight files: the metric's properties, a plain-torch reference over
the same random weights, frozen weights with gradient to the images, and the one-sentence file errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from fixtures.lpips import CONVS, POOL_AFTER, TAP_AFTER, _lin_state, _vgg_state
from torch import Tensor

from lit_genvision.nn import LPIPS


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, dict]:
    d = tmp_path_factory.mktemp("lpips")
    vgg, lin = _vgg_state(), _lin_state()
    torch.save(vgg, d / "vgg16-397923af.pth")
    torch.save(lin, d / "vgg.pth")
    return d / "vgg16-397923af.pth", d / "vgg.pth", vgg, lin


@pytest.fixture(scope="module")
def lpips(files: tuple[Path, Path, dict, dict]) -> LPIPS:
    return LPIPS(files[0], files[1])


def _reference(x: Tensor, y: Tensor, vgg: dict[str, Tensor], lin: dict[str, Tensor]) -> Tensor:
    """Eq. 1 written out with functional ops, per image, from the raw state dicts."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def taps(img: Tensor) -> list[Tensor]:
        h, out = (img.repeat(1, 3 // img.shape[1], 1, 1) - shift) / scale, []
        for i in CONVS:
            h = F.relu(F.conv2d(h, vgg[f"features.{i}.weight"], vgg[f"features.{i}.bias"], padding=1))
            if i in TAP_AFTER:
                out.append(h)
            if i in POOL_AFTER:
                h = F.max_pool2d(h, 2)
        return out

    d = torch.zeros(x.shape[0])
    for layer, (a, b) in enumerate(zip(taps(x), taps(y), strict=True)):
        a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
        b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
        w = lin[f"lin{layer}.model.1.weight"].view(1, -1, 1, 1)
        d += ((a - b) ** 2 * w).sum(dim=1).mean(dim=(1, 2))
    return d


def test_properties_and_reference(lpips: LPIPS, files: tuple[Path, Path, dict, dict]) -> None:
    g = torch.Generator().manual_seed(2)
    x, y = (torch.rand(2, 3, 16, 16, generator=g) * 2 - 1 for _ in range(2))
    with torch.no_grad():
        d_xy, d_yx, d_xx = lpips(x, y), lpips(y, x), lpips(x, x)
        ref = _reference(x, y, files[2], files[3])
    assert d_xy.shape == (2,)
    torch.testing.assert_close(d_xx, torch.zeros(2), rtol=0, atol=1e-7)  # exactly 0 up to float rounding
    assert torch.all(d_xy > 0)
    torch.testing.assert_close(d_xy, d_yx)
    torch.testing.assert_close(d_xy, ref, rtol=1e-4, atol=1e-6)


def test_grayscale_16px(lpips: LPIPS, files: tuple[Path, Path, dict, dict]) -> None:
    g = torch.Generator().manual_seed(3)
    x, y = (torch.rand(2, 1, 16, 16, generator=g) * 2 - 1 for _ in range(2))
    with torch.no_grad():
        d = lpips(x, y)
        torch.testing.assert_close(d, _reference(x, y, files[2], files[3]), rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(d, lpips(x.repeat(1, 3, 1, 1), y.repeat(1, 3, 1, 1)))
    assert torch.isfinite(d).all() and (d > 0).all()
    with pytest.raises(ValueError, match="H, W ≥ 16"):
        lpips(x[..., :8, :8], y[..., :8, :8])


def test_gradient_to_input_not_weights(lpips: LPIPS) -> None:
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    lpips(x, torch.zeros(1, 3, 16, 16)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in lpips.parameters())


def test_stays_frozen_in_eval(lpips: LPIPS) -> None:
    lpips.train()
    assert not lpips.training and not any(m.training for m in lpips.modules())


def test_missing_file(tmp_path: Path, files: tuple[Path, Path, dict, dict]) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pth does not exist; pass torchvision's vgg16-397923af\.pth"):
        LPIPS(tmp_path / "nope.pth", files[1])
    with pytest.raises(FileNotFoundError, match=r"nope\.pth does not exist; pass the lpips package's"):
        LPIPS(files[0], tmp_path / "nope.pth")


def test_wrong_keys(tmp_path: Path, files: tuple[Path, Path, dict, dict]) -> None:
    # The two files swapped: each lacks the other's keys; the message names the file and the expected one.
    with pytest.raises(ValueError, match=r"vgg\.pth lacks 26 expected key\(s\).*vgg16-397923af\.pth") as err:
        LPIPS(files[1], files[1])
    assert str(err.value).count(". ") == 0  # one sentence
    with pytest.raises(ValueError, match=r"lacks 5 expected key\(s\).*weights/v0\.1/vgg\.pth"):
        LPIPS(files[0], files[0])


def test_safetensors_and_shape_check(tmp_path: Path, files: tuple[Path, Path, dict, dict]) -> None:
    from safetensors.torch import save_file

    lin = {k: v.clone() for k, v in files[3].items()}
    save_file(lin, tmp_path / "vgg.safetensors")
    LPIPS(files[0], tmp_path / "vgg.safetensors")
    lin["lin2.model.1.weight"] = torch.rand(1, 64, 1, 1)
    torch.save(lin, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"'lin2\.model\.1\.weight' of shape \(1, 64, 1, 1\), expected"):
        LPIPS(files[0], tmp_path / "bad.pth")


def test_real_torchvision_layout(tmp_path: Path, files: tuple[Path, Path, dict, dict]) -> None:
    """torchvision's own vgg16 features (its make_layers, random init) load key for key and match our trunk."""
    vgg = pytest.importorskip("torchvision.models.vgg")
    torch.manual_seed(0)
    features = vgg.make_layers(vgg.cfgs["D"], batch_norm=False).eval()  # vgg16().features, no 100M-param head
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, tmp_path / "vgg16.pth")
    m = LPIPS(tmp_path / "vgg16.pth", files[1])
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(m.features(x), features[:30](x))
