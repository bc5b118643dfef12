"""State dicts saved before a rename still load: the key maps of `nn.renames`, for every tensor the networks have
renamed (cross-attention folded into `CrossAttention`, the vector embedding into `VectorEmbedding`). The old names
are written out here as the earlier code saved them, so the test needs nothing from that code."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_genvision.nn.dit import DiT
from lit_genvision.nn.renames import layer_renames, rename_on_load, upgrade_state_dict
from lit_genvision.nn.transformer import TransformerBlock
from lit_genvision.nn.unet import UNet


def as_saved_before(state: dict[str, torch.Tensor], new_to_old: dict[str, str]) -> dict[str, torch.Tensor]:
    """``state`` with every key ending in a new name given its old name (what the earlier code wrote)."""
    out = {}
    for key, value in state.items():
        for new, old in new_to_old.items():
            if key == new or key.endswith("." + new):
                key = key[: len(key) - len(new)] + old
                break
        out[key] = value
    return out


def perturbed(net: nn.Module, seed: int = 0) -> nn.Module:
    """Zero-initialised layers moved, so a tensor loaded into the wrong place changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return net


CROSS_BLOCK = {  # TransformerBlock: today's name → the name before `CrossAttention`
    **{f"cross.{p}.{t}": f"cross_{p}.{t}" for p in ("q", "kv", "proj", "q_norm", "k_norm") for t in ("weight", "bias")}
}
CROSS_UNET = {  # AttentionBlock: the output projection was ``cross`` itself
    **{f"cross.{p}.{t}": f"cross_{p}.{t}" for p in ("q", "kv") for t in ("weight", "bias")},
    "cross.proj.weight": "cross.weight",
    "cross.proj.bias": "cross.bias",
}
VECTOR = {"vector_embed.proj.weight": "vector_embed.weight", "vector_embed.proj.bias": "vector_embed.bias",
          "vector_embed.null": "vector_null"}  # fmt: skip

OLD_BLOCK_KEYS = {  # TransformerBlock(16, 2, context_dim=8, qk_norm=True).state_dict() before `CrossAttention`
    f"{layer}.{t}"
    for layer in ("norm1", "qkv", "proj", "q_norm", "k_norm", "norm_cross", "cross_q", "cross_kv", "cross_proj",
                  "cross_q_norm", "cross_k_norm", "norm2", "mlp.0", "mlp.3")
    for t in ("weight", "bias")
}  # fmt: skip


def test_a_transformer_block_saved_with_its_own_cross_attention_layers_loads_and_computes_the_same():
    torch.manual_seed(0)
    block = perturbed(TransformerBlock(16, 2, context_dim=8, qk_norm=True))
    old = as_saved_before(block.state_dict(), CROSS_BLOCK)
    assert set(old) == OLD_BLOCK_KEYS
    loaded = TransformerBlock(16, 2, context_dim=8, qk_norm=True)
    loaded.load_state_dict(old)  # strict
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 3, 8)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    assert torch.equal(loaded(x, context=ctx, context_mask=mask), block(x, context=ctx, context_mask=mask))


@pytest.mark.parametrize("layout", ["lecture", "ddpm"])
def test_a_unet_saved_with_old_cross_attention_and_vector_names_loads_and_computes_the_same(layout):
    kw = dict(image_size=8, channels=8, channel_mults=(1, 2), depth=1, attention_at=(4, 8), heads=2, norm_groups=4,
              context_dim=8, cond_dim=6, layout=layout)  # fmt: skip
    torch.manual_seed(0)
    net = perturbed(UNet(**kw))
    old = as_saved_before(net.state_dict(), CROSS_UNET | VECTOR)
    assert {"vector_null", "vector_embed.weight", "mid.attn.0.cross.weight", "mid.attn.0.cross_kv.bias"} <= set(old)
    assert not any(".cross.q." in k or ".cross.proj." in k or "vector_embed.null" in k for k in old)
    loaded = UNet(**kw)
    wrapper = nn.ModuleDict({"net": loaded})  # the renames apply under any prefix (a LightningModule's ``net.``)
    wrapper.load_state_dict({f"net.{k}": v for k, v in old.items()})  # strict
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([1.0, 5.0, 9.0])
    cond = {"context": torch.randn(3, 4, 8), "context_mask": torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])}
    cond |= {"context_mask": cond["context_mask"].bool(), "vector": torch.randn(3, 6)}
    cond["vector_null"] = torch.tensor([False, True, False])
    assert torch.equal(loaded(x, t, cond), net(x, t, cond))
    assert torch.equal(loaded(x, t, {}), net(x, t, {}))


def test_a_dit_saved_with_old_cross_attention_and_vector_names_loads_and_computes_the_same():
    kw = dict(image_size=8, patch_size=4, hidden=16, depth=1, heads=2, context_dim=8, cond_dim=6)
    torch.manual_seed(0)
    net = perturbed(DiT(**kw))
    old = as_saved_before(net.state_dict(), CROSS_BLOCK | VECTOR)
    assert {"vector_null", "vector_embed.weight", "blocks.0.cross_proj.weight", "blocks.0.cross_kv.bias"} <= set(old)
    loaded = DiT(**kw)
    loaded.load_state_dict(old)  # strict
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([2.0, 7.0])
    cond = {"context": torch.randn(2, 3, 8), "vector": torch.randn(2, 6)}
    assert torch.equal(loaded(x, t, cond), net(x, t, cond))


def test_upgrade_state_dict_applies_every_map_under_a_model_and_keeps_new_names():
    net = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.ModuleDict({"c": nn.Linear(2, 2)})})
    rename_on_load(net["b"], layer_renames({"old_c": "c"}))
    old = {"a.weight": 1, "a.bias": 2, "b.old_c.weight": 3, "b.old_c.bias": 4}
    assert upgrade_state_dict(net, old) == {"a.weight": 1, "a.bias": 2, "b.c.weight": 3, "b.c.bias": 4}
    assert upgrade_state_dict(net, {"b.c.weight": 5, "b.old_c.weight": 6})["b.c.weight"] == 5  # today's name wins
    assert old["b.old_c.weight"] == 3  # the input is not modified


def test_a_renamed_submodule_moves_every_tensor_under_it():
    net = nn.ModuleDict({"conditions": nn.ModuleDict({"text": nn.ModuleDict({"proj": nn.Linear(2, 3)})})})
    rename_on_load(net, {"text_proj.": "conditions.text.proj."})
    old = {"text_proj.weight": torch.ones(3, 2), "text_proj.bias": torch.zeros(3)}
    assert set(upgrade_state_dict(net, old)) == {"conditions.text.proj.weight", "conditions.text.proj.bias"}
    net.load_state_dict(old)  # strict, through the pre-hook
    assert torch.equal(net["conditions"]["text"]["proj"].weight, torch.ones(3, 2))
