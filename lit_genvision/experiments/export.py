"""``lit-genvision export``: a checkpoint's (EMA) weights as safetensors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.torch import save_file

from lit_genvision.experiments.checkpoints import load_model, read_checkpoint


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.add_argument("--no-ema", action="store_true", help="export the raw weights instead of the EMA")


def run(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors, got {out.name!r}.")
    model = load_model(args.ckpt, use_ema=not args.no_ema)
    hparams = {k: v for k, v in (read_checkpoint(args.ckpt).get("hyper_parameters") or {}).items()}
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={"config": json.dumps(hparams, default=str), "ema": str(model.ema_loaded)})
    print(f"Wrote {len(tensors)} tensors ({'EMA' if model.ema_loaded else 'raw'} weights) to {out}")
    return out
