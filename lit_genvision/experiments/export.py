"""``lit-genvision export``: a checkpoint's (EMA) weights as safetensors, or, for a U-Net built with
``layout: ddpm``, as a diffusers ``UNet2DModel`` folder (``config.json`` +
``diffusion_pytorch_model.safetensors``) that diffusers' pipelines load with ``from_pretrained``.

The DDPM layout (Ho et al. 2020) is block for block diffusers' ``UNet2DModel``, as google/ddpm-cifar10-32
was converted; only the parameter names differ, and ``DIFFUSERS_NAMES`` is the whole translation.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import Tensor, nn

from lit_genvision.checks import check_writable
from lit_genvision.experiments.arguments import add_shared_arguments
from lit_genvision.experiments.checkpoints import load_model, read_checkpoint
from lit_genvision.nn.unet import LAYOUTS, AttentionBlock, UNet

# Our paper-layout U-Net's parameter names → UNet2DModel's: (pattern, replacement), applied in order to each
# name. ``to_qkv`` is our fused q/k/v projection, split into diffusers' to_q, to_k, to_v on export.
DIFFUSERS_NAMES: tuple[tuple[str, str], ...] = (
    (r"^time_embed\.mlp\.0\.", "time_embedding.linear_1."),
    (r"^time_embed\.mlp\.2\.", "time_embedding.linear_2."),
    (r"^label_embed\.", "class_embedding."),
    (r"^norm_out\.", "conv_norm_out."),
    (r"^down\.(\d+)\.down\.", r"down_blocks.\1.downsamplers.0.conv."),
    (r"^up\.(\d+)\.up\.1\.", r"up_blocks.\1.upsamplers.0.conv."),
    (r"^down\.(\d+)\.", r"down_blocks.\1."),
    (r"^up\.(\d+)\.", r"up_blocks.\1."),
    (r"^mid\.", "mid_block."),
    (r"\.res\.(\d+)\.", r".resnets.\1."),
    (r"\.attn\.(\d+)\.", r".attentions.\1."),
    (r"\.emb_proj\.1\.", ".time_emb_proj."),
    (r"\.skip\.", ".conv_shortcut."),
    (r"\.norm\.", ".group_norm."),
    (r"\.proj\.", ".to_out.0."),
    (r"\.qkv\.", ".to_qkv."),
)
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="checkpoint written by `lit-genvision fit` (a path or a URL)")
    p.add_argument(
        "--out", required=True, help="output .safetensors file (--format safetensors) or folder (--format diffusers)"
    )
    add_shared_arguments(p, ("no_ema",), no_ema="export the raw weights instead of the EMA")
    p.add_argument(
        "--format",
        choices=("safetensors", "diffusers"),
        default="safetensors",
        help="safetensors: the model's state dict; diffusers: a UNet2DModel folder (needs a U-Net with layout: ddpm)",
    )


def diffusers_state_dict(net: UNet) -> dict[str, Tensor]:
    """``net``'s weights under UNet2DModel's names (``DIFFUSERS_NAMES``), q/k/v split."""
    out: dict[str, Tensor] = {}
    for name, value in net.state_dict().items():
        for pattern, repl in DIFFUSERS_NAMES:
            name = re.sub(pattern, repl, name)
        if ".to_qkv." in name:
            for part, chunk in zip(("to_q", "to_k", "to_v"), value.chunk(3, dim=0), strict=True):
                out[name.replace("to_qkv", part)] = chunk.contiguous()
        else:
            out[name] = value.contiguous()
    return out


def diffusers_config(net: UNet) -> dict[str, Any]:
    """UNet2DModel's ``config.json`` for a U-Net built with a paper layout; one sentence when it has no
    UNet2DModel equivalent."""
    if net.layout not in LAYOUTS:
        raise ValueError(
            f"--format diffusers needs a U-Net built with layout: {' or '.join(LAYOUTS)}, and this one has "
            f"layout: {net.layout}."
        )
    attn = [m for m in net.modules() if isinstance(m, AttentionBlock)]
    if any(a.cross is not None for a in attn):
        raise ValueError(
            "--format diffusers cannot export a U-Net with cross-attention (context_dim), which UNet2DModel lacks."
        )
    groups = {m.num_groups for m in net.modules() if isinstance(m, nn.GroupNorm)}
    if len(groups) != 1:
        raise ValueError(
            f"--format diffusers needs one GroupNorm group count throughout, and this U-Net uses {sorted(groups)}; "
            "choose norm_groups that divides every width."
        )
    widths = [level.res[0].conv1.out_channels for level in net.down]
    has_attn = [isinstance(level.attn[0], AttentionBlock) for level in net.down]
    heads = attn[0].heads
    head_dims = {a.qkv.in_features // heads for a in attn}
    if heads > 1 and len(head_dims) > 1:
        raise ValueError(
            f"--format diffusers needs one attention head width, and {heads} heads over widths "
            f"{sorted({a.qkv.in_features for a in attn})} give {sorted(head_dims)}; use heads: 1."
        )
    spec = LAYOUTS[net.layout]
    return {
        "_class_name": "UNet2DModel",
        "sample_size": net.image_size,
        "in_channels": net.conv_in.in_channels,
        "out_channels": net.conv_out.out_channels,
        "center_input_sample": False,
        "time_embedding_type": "positional",
        "flip_sin_to_cos": spec["flip_sin_to_cos"],
        "freq_shift": spec["freq_shift"],
        "down_block_types": ["AttnDownBlock2D" if a else "DownBlock2D" for a in has_attn],
        "mid_block_type": "UNetMidBlock2D",
        "up_block_types": ["AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(has_attn)],
        "block_out_channels": widths,
        "layers_per_block": len(net.down[0].res),
        "mid_block_scale_factor": 1,
        "downsample_padding": 0 if spec["same_padding"] else 1,
        "downsample_type": "conv",
        "upsample_type": "conv",
        "dropout": net.down[0].res[0].dropout.p,
        "act_fn": "silu",
        "attention_head_dim": None if heads == 1 else head_dims.pop(),
        "norm_num_groups": groups.pop(),
        "norm_eps": net.norm_eps,
        "resnet_time_scale_shift": "default",
        "add_attention": True,
        "class_embed_type": None,
        "num_class_embeds": None if net.label_embed is None else net.label_embed.num_embeddings,
    }


def write_diffusers(net: UNet, folder: str | Path) -> Path:
    """Write ``net`` as a diffusers UNet2DModel folder: ``config.json`` + ``diffusion_pytorch_model.safetensors``."""
    folder = Path(folder)
    config = diffusers_config(net)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(diffusers_state_dict(net), str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    return folder


def run(args: argparse.Namespace) -> Path:
    """Write the weights of ``--ckpt`` to ``--out`` in ``--format``."""
    out = Path(args.out)
    fmt = getattr(args, "format", "safetensors")
    if fmt == "safetensors" and out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors, got {out.name!r}.")
    if fmt == "diffusers" and out.suffix:
        raise ValueError(f"--format diffusers writes a folder, so --out must be a folder name, got {out.name!r}.")
    check_writable(out / "config.json" if fmt == "diffusers" else out, "--out")
    model = load_model(args.ckpt, use_ema=not args.no_ema)
    weights = "EMA" if model.ema_loaded else "raw"
    if fmt == "diffusers":
        net = getattr(model, "net", None)
        if not isinstance(net, UNet):
            raise ValueError(
                f"--format diffusers exports a model whose net is a U-Net, and {args.ckpt} holds a "
                f"{type(model).__name__} without one."
            )
        write_diffusers(net, out)
        print(f"Wrote a diffusers UNet2DModel ({weights} weights) to {out}")
        return out
    hparams = {k: v for k, v in (read_checkpoint(args.ckpt).get("hyper_parameters") or {}).items()}
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={"config": json.dumps(hparams, default=str), "ema": str(model.ema_loaded)})
    print(f"Wrote {len(tensors)} tensors ({weights} weights) to {out}")
    return out
