"""The fused Triton GroupNorm(+scale/shift)(+SiLU) against the torch reference."""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import assert_one_sentence, assert_within_twice_reference, kernel_device, value_and_grads

from genvision_kernels import reference

ALL = ("weight", "bias", "scale", "shift")
CASES = {  # shape, groups, channels-last, optional inputs given, silu
    "nchw-split-stats-full": ((2, 8, 5, 7), 4, False, ALL, True),
    "channels-last-modulated": ((3, 12, 6, 6), 3, True, ALL, False),
    "no-affine-1d-silu": ((2, 6, 11), 2, False, (), True),
    "one-program-per-group": ((4, 16, 4, 4), 8, False, ("weight", "bias"), True),
    "channels-last-shift-only": ((2, 10, 3, 5), 5, True, ("weight", "bias", "shift"), True),
    "channels-last-one-program-per-group": ((4, 12, 4, 4), 4, True, ALL, True),
    "unsplit-tiled-loop": ((8, 8, 9, 9), 2, False, ALL, True),
    "5d-modulation-without-affine": ((2, 8, 3, 4, 5), 2, False, ("scale", "shift"), True),
    "weight-without-bias-scale-only": ((2, 6, 7, 3), 3, False, ("weight", "scale"), False),
}


def _fused():
    from genvision_kernels import fused

    return fused.group_norm


def _inputs(shape, given, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    b, c = shape[:2]
    inputs = {"x": torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 3}  # an offset mean
    inputs["weight"] = 1 + 0.5 * torch.randn(c, generator=g, dtype=torch.float64)
    inputs["bias"] = 0.5 * torch.randn(c, generator=g, dtype=torch.float64)
    inputs["scale"] = 0.5 * torch.randn(b, c, generator=g, dtype=torch.float64)
    inputs["shift"] = 0.5 * torch.randn(b, c, generator=g, dtype=torch.float64)
    dy = torch.randn(shape, generator=g, dtype=torch.float64)
    return {k: v.to(device) for k, v in inputs.items() if k == "x" or k in given}, dy.to(device)


def _layout(inputs, channels_last):
    if channels_last:
        inputs = dict(inputs, x=inputs["x"].to(memory_format=torch.channels_last))
    return inputs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_output_and_gradients_within_twice_the_reference_error(case, dtype):
    shape, groups, channels_last, given, silu = CASES[case]
    device = kernel_device()
    inputs, dy = _inputs(shape, given, device)
    rounded = _layout({k: v.to(dtype) for k, v in inputs.items()}, channels_last)
    kw = dict(num_groups=groups, silu=silu)
    truth = value_and_grads(reference.group_norm, {k: v.double() for k, v in rounded.items()}, dy, **kw)
    same = value_and_grads(reference.group_norm, rounded, dy, **kw)
    kern = value_and_grads(_fused(), rounded, dy, **kw)
    assert set(kern) == set(truth)
    for name in truth:
        assert kern[name].dtype == dtype and kern[name].shape == truth[name].shape
        assert_within_twice_reference(f"{case} {name}", kern[name], same[name], truth[name])
    if channels_last:
        assert kern["out"].is_contiguous(memory_format=torch.channels_last)
        assert kern["dx"].is_contiguous(memory_format=torch.channels_last)


GPU_SHAPES = [(64, 128, 32, 32), (64, 256, 16, 16), (2, 512, 8, 8), (8, 320, 64, 64), (32, 256, 64, 64)]


def test_the_cases_cover_every_launch_path():
    """Split statistics, one unsplit multi-tile pass, and the whole group in one program — by the
    small cases under the interpreter, by the `gpu` shapes (32 groups) on CUDA."""
    from genvision_kernels.triton_group_norm import launch_plan

    device = kernel_device()
    shapes = [(shape, groups) for shape, groups, *_ in CASES.values()] if device.type == "cpu" else []
    shapes += [(shape, 32) for shape in GPU_SHAPES] if device.type == "cuda" else []
    paths = {}
    for shape, groups in shapes:
        plan = launch_plan(shape[0], groups, torch.Size(shape[2:]).numel(), shape[1] // groups, device)
        paths[shape] = "single" if plan["SINGLE"] else "split" if plan["SPLIT"] > 1 else "tiled"
    assert set(paths.values()) == {"single", "split", "tiled"}, paths


def test_statistics_survive_a_large_mean():
    """Chan's pairwise (mean, M2) update: a mean 10⁴ × the spread loses nothing in fp32."""
    device = kernel_device()
    x = (torch.randn(2, 8, 9, 9, generator=torch.Generator().manual_seed(3)) + 1e4).to(device)
    truth = reference.group_norm(x.double(), 4)
    torch.testing.assert_close(_fused()(x, 4).double(), truth, atol=2e-3, rtol=0)


def test_modulation_given_as_b_c_1_1_gets_gradients_of_that_shape():
    device = kernel_device()
    inputs, dy = _inputs((2, 8, 4, 4), ALL, device)
    inputs = {k: v.float() for k, v in inputs.items()}
    inputs["scale"] = inputs["scale"][..., None, None]
    out = value_and_grads(_fused(), inputs, dy, num_groups=2, silu=True)
    ref = value_and_grads(reference.group_norm, inputs, dy, num_groups=2, silu=True)
    assert out["dscale"].shape == (2, 8, 1, 1)
    torch.testing.assert_close(out["dscale"], ref["dscale"], atol=1e-4, rtol=1e-4)


def test_bad_shapes_are_one_sentence():
    from genvision_kernels import fused

    with pytest.raises(ValueError, match="divisible by 3 groups") as err:
        fused.group_norm(torch.zeros(1, 8, 2, 2), 3)
    assert_one_sentence(str(err.value), "choose a group count")
    with pytest.raises(ValueError, match="scale must hold one value per") as err:
        fused.group_norm(torch.zeros(1, 8, 2, 2), 2, scale=torch.zeros(1, 4))
    assert_one_sentence(str(err.value), "8 values per sample")
    with pytest.raises(ValueError, match="got torch.float64") as err:
        fused.group_norm(torch.zeros(1, 8, 2, 2, dtype=torch.float64), 2)
    assert_one_sentence(str(err.value), "kernels: auto or torch")


def test_an_empty_batch_gives_an_empty_result():
    out = _fused()(torch.zeros(0, 8, 4, 4), 2, silu=True)
    assert out.shape == (0, 8, 4, 4)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=["bf16", "fp16", "fp32"])
@pytest.mark.parametrize("shape", GPU_SHAPES)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_gpu_large_shapes(shape, dtype, channels_last):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    inputs, dy = _inputs(shape, ALL, torch.device("cuda"))
    rounded = _layout({k: v.to(dtype) for k, v in inputs.items()}, channels_last)
    kw = dict(num_groups=32, silu=True)
    truth = value_and_grads(reference.group_norm, {k: v.double() for k, v in rounded.items()}, dy, **kw)
    same = value_and_grads(reference.group_norm, rounded, dy, **kw)
    kern = value_and_grads(_fused(), rounded, dy, **kw)
    for name in truth:
        assert_within_twice_reference(name, kern[name], same[name], truth[name])


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x[:, :, :, ::2],  # strided view: copied, not misread
        lambda x: x.permute(0, 1, 3, 2),  # spatial dims swapped
        lambda x: x[:, :, :1].to(memory_format=torch.channels_last),  # a size-1 spatial dim
    ],
    ids=["strided-view", "transposed", "size-one-dim"],
)
def test_any_layout_gives_the_reference(make):
    device = kernel_device()
    g = torch.Generator().manual_seed(5)
    x = make(torch.randn(2, 8, 6, 8, generator=g).to(device))
    torch.testing.assert_close(_fused()(x, 4, silu=True), reference.group_norm(x, 4, silu=True), atol=1e-5, rtol=1e-5)
