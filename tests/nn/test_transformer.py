"""The transformer block: adaLN-Zero identity, masks, KV-cache decoding, positions, gradients, the ops door."""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import kernel_device
from tests_helpers import randomise

from lit_genvision.nn import ops
from lit_genvision.nn.patches import RotaryEmbedding
from lit_genvision.nn.transformer import KVCache, Transformer, TransformerBlock

B, N, D, H, M, CTX, COND = 2, 6, 16, 2, 5, 12, 8


def _inputs(seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(B, N, D, generator=g),
        "context": torch.randn(B, M, CTX, generator=g),
        "cond": torch.randn(B, COND, generator=g),
    }


def _block(**kwargs) -> TransformerBlock:
    torch.manual_seed(0)
    return TransformerBlock(D, H, kernels="torch", **kwargs)


def test_adaln_zero_block_is_the_identity_at_init():
    block = _block(context_dim=CTX, cond_dim=COND, qk_norm=True).eval()
    t = _inputs()
    out = block(t["x"], context=t["context"], cond=t["cond"])
    assert out.shape == (B, N, D)
    torch.testing.assert_close(out, t["x"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="cond_dim"):
        block(t["x"])


def test_causal_output_at_i_ignores_later_tokens():
    block = randomise(_block(causal=True, context_dim=CTX, cond_dim=COND))
    t = _inputs()
    out = block(t["x"], context=t["context"], cond=t["cond"])
    for i in range(N - 1):
        x2 = t["x"].clone()
        x2[:, i + 1 :] = torch.randn_like(x2[:, i + 1 :])
        out2 = block(x2, context=t["context"], cond=t["cond"])
        torch.testing.assert_close(out2[:, : i + 1], out[:, : i + 1], rtol=0, atol=1e-6)
        assert not torch.allclose(out2[:, i + 1 :], out[:, i + 1 :])


def test_padded_tokens_do_not_change_the_others():
    block = randomise(_block(qk_norm=True))
    t = _inputs()
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 4:] = False  # sample 0: the last two tokens are padding
    mask[1, 1] = False  # sample 1: a hole in the middle
    out = block(t["x"], mask=mask)
    x2 = torch.where(mask[..., None], t["x"], torch.randn_like(t["x"]) * 10)
    out2 = block(x2, mask=mask)
    torch.testing.assert_close(out2[mask], out[mask], rtol=0, atol=1e-5)
    # and dropping the padding altogether gives the same outputs for sample 0
    torch.testing.assert_close(block(t["x"][:1, :4]), out[:1, :4], rtol=0, atol=1e-5)


def test_padded_context_tokens_do_not_change_the_output():
    block = randomise(_block(context_dim=CTX))
    t = _inputs()
    ctx_mask = torch.ones(B, M, dtype=torch.bool)
    ctx_mask[0, 3:] = False
    ctx_mask[1, 0] = False
    out = block(t["x"], context=t["context"], context_mask=ctx_mask)
    ctx2 = torch.where(ctx_mask[..., None], t["context"], torch.randn_like(t["context"]) * 10)
    torch.testing.assert_close(block(t["x"], context=ctx2, context_mask=ctx_mask), out, rtol=0, atol=1e-5)
    assert not torch.allclose(block(t["x"], context=ctx2), out)  # the mask is what protects them


@pytest.mark.parametrize("use_rope", [False, True], ids=["no-rope", "rope"])
def test_block_kv_cache_decoding_equals_the_causal_pass(use_rope):
    block = randomise(_block(causal=True, context_dim=CTX, cond_dim=COND, qk_norm=True))
    rotary = RotaryEmbedding(D // H)
    t = _inputs()
    kw = {"context": t["context"], "cond": t["cond"]}
    full = block(t["x"], rope=rotary.at(N) if use_rope else None, **kw)

    cache = KVCache()
    steps = []
    for i in range(N):  # one token at a time
        rope = rotary.at(1, offset=cache.length) if use_rope else None
        steps.append(block(t["x"][:, i : i + 1], rope=rope, cache=cache, **kw))
    assert cache.length == N
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=1e-5)

    cache.reset()  # a prompt of 3, then a chunk of 2 after it, then 1: the offset causal mask
    outs = []
    for lo, hi in [(0, 3), (3, 5), (5, 6)]:
        rope = rotary.at(hi - lo, offset=cache.length) if use_rope else None
        outs.append(block(t["x"][:, lo:hi], rope=rope, cache=cache, **kw))
    torch.testing.assert_close(torch.cat(outs, dim=1), full, rtol=0, atol=1e-5)


@pytest.mark.parametrize("use_rope", [False, True], ids=["no-rope", "rope"])
def test_transformer_kv_cache_decoding_equals_the_causal_pass(use_rope):
    torch.manual_seed(0)
    net = randomise(Transformer(3, D, H, context_dim=CTX, causal=True, rope=use_rope, kernels="torch"))
    t = _inputs()
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[1, 2] = False  # a padded token in the middle stays padded in the cache
    full = net(t["x"], context=t["context"], mask=mask)
    cache = net.new_cache()
    steps = [net(t["x"][:, i : i + 1], context=t["context"], mask=mask[:, i : i + 1], cache=cache) for i in range(N)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=1e-5)
    assert all(c.length == N for c in cache)
    with pytest.raises(ValueError, match="new_cache"):
        net(t["x"], cache=cache[:1])


def _grads(block: TransformerBlock, **kwargs) -> dict[str, torch.Tensor]:
    block.zero_grad()
    t = _inputs()
    out = block(t["x"], context=t["context"], cond=t["cond"], **kwargs)
    out.pow(2).mean().backward()
    return {n: p.grad for n, p in block.named_parameters()}


def test_gradients_reach_every_parameter():
    block = _block(context_dim=CTX, causal=True, qk_norm=True)
    grads = _grads(block, rope=RotaryEmbedding(D // H).at(N))
    silent = [n for n, g in grads.items() if g is None or not g.abs().sum() > 0]
    assert not silent, silent


def test_adaln_zero_gradients_reach_the_modulation_first_then_everything():
    """At init the gates are 0, so only the adaLN linear gets a gradient (DiT's zero init: the
    branch weights are silent for exactly one step); after one SGD step every parameter gets one."""
    block = _block(context_dim=CTX, cond_dim=COND, qk_norm=True)
    grads = _grads(block)
    moving = {n for n, g in grads.items() if g is not None and g.abs().sum() > 0}
    assert moving == {"adaLN.1.weight", "adaLN.1.bias"}
    torch.optim.SGD(block.parameters(), lr=0.1).step()
    silent = [n for n, g in _grads(block).items() if g is None or not g.abs().sum() > 0]
    assert not silent, silent


def test_attention_goes_through_ops(monkeypatch):
    calls = []

    def counted(q, k, v, **kwargs):
        calls.append(kwargs)
        return real(q, k, v, **kwargs)

    real = ops.attention
    monkeypatch.setattr(ops, "attention", counted)
    block = _block(context_dim=CTX, causal=True)
    t = _inputs()
    block(t["x"], context=t["context"], context_mask=torch.ones(B, M, dtype=torch.bool))
    assert [(c.get("causal", False), c["backend"], c["key_padding_mask"] is None) for c in calls] == [
        (True, "torch", True),
        (False, "torch", False),
    ]
    with pytest.raises(ValueError, match="kernels must be one of"):
        TransformerBlock(D, H, kernels="cuda")
    with pytest.raises(ValueError, match="divisible by heads"):
        TransformerBlock(10, 3)


def test_triton_kernel_path_matches_the_reference(monkeypatch):
    """`kernels: triton` (interpreter on the CPU) computes the block's forward and backward as the reference."""
    from genvision_kernels import fused

    device = kernel_device()
    calls = []

    def counted(*args, _fn=fused.attention, **kwargs):
        calls.append(1)
        return _fn(*args, **kwargs)

    monkeypatch.setattr(fused, "attention", counted)
    results = {}
    for kernels in ("torch", "triton"):
        torch.manual_seed(0)
        block = randomise(TransformerBlock(D, H, context_dim=CTX, causal=True, kernels=kernels)).to(device)
        t = {k: v.to(device) for k, v in _inputs().items()}
        mask = torch.ones(B, N, dtype=torch.bool, device=device)
        mask[0, -1] = False
        out = block(t["x"], context=t["context"], mask=mask)
        out.pow(2).sum().backward()
        results[kernels] = (out.detach(), block.qkv.weight.grad)
    assert len(calls) == 2  # self + cross through the fused kernel: no silent fallback
    torch.testing.assert_close(results["triton"][0], results["torch"][0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(results["triton"][1], results["torch"][1], rtol=1e-4, atol=1e-4)
