"""DALL-E 2's prior on captioned digits (issue 30): how close its CLIP image embeddings come to the true ones.

    python benchmarks/unclip_prior.py [--run-dir runs/unclip_prior] [--only sqrt_d standardise] [--guidance 1 2 4]

Fits the digits CLIP (``configs/clip/digits.yaml``) and the prior (``configs/unclip/digits_prior.yaml``) into the
run directory unless they are there — once per normalisation of the embedding space (``sqrt_d``: z = √D·e,
DALLE2-pytorch's; ``standardise``: per-dimension μ, σ of the training embeddings) — then, on every test digit
and its test-split caption (templates training never saw), draws the prior's embedding of each caption (the best
of 2 candidates by cosine to the caption's text embedding, the paper's rule; and 1 candidate at s = 1) at each
prior guidance scale, and reports ``metrics.prior``'s figures: the baseline cos(text, image), cos(predicted,
image), cos(predicted, text), cos(predicted, the image of a shuffled caption), and the CLIP's zero-shot accuracy
on the predicted embeddings (the test split's own label templates).

Writes benchmarks/results/unclip_prior.{json,sqlite} (the store's records: model "prior <normalise> s=G k=K").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, HERE)
import torch  # noqa: E402
from common import RESULTS, save, train_config  # noqa: E402

from lit_genvision.data import DigitsDataModule  # noqa: E402
from lit_genvision.experiments.checkpoints import load_model  # noqa: E402
from lit_genvision.experiments.store import ResultsStore  # noqa: E402
from lit_genvision.metrics.prior import prior_figures  # noqa: E402
from lit_genvision.models.unclip import sample_image_embeddings, text_embeddings  # noqa: E402

CLIP_KEY = "--model.init_args.net.init_args.text_encoder.init_args.checkpoint"
SPACE_KEY = "--model.init_args.space.init_args.checkpoint"
NORM_KEY = "--model.init_args.space.init_args.normalise"


def test_pairs(batch: int = 256) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """The test split's images (N, 1, 16, 16) in [-1, 1], their captions and labels, in the split's order."""
    dm = DigitsDataModule(image_size=16, batch_size=batch, seed=0, captions="templates")
    dm.setup("test")
    images, texts, labels = [], [], []
    for b in dm.make_loader(dm.split("test"), shuffle=False):
        b = dm.device_transform(b, training=False)
        images.append(b["image"])
        texts += list(b["text"])
        labels.append(b["label"])
    return torch.cat(images), texts, torch.cat(labels)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", type=Path, default=Path("runs/unclip_prior"))
    p.add_argument("--only", nargs="*", default=["sqrt_d", "standardise"], help="normalisations to fit and score")
    p.add_argument("--guidance", nargs="*", type=float, default=[1.0, 2.0, 4.0], help="prior guidance scales")
    args = p.parse_args()
    store = ResultsStore(RESULTS / "unclip_prior.sqlite")
    path = RESULTS / "unclip_prior.json"
    out = json.loads(path.read_text()) if path.is_file() else {}
    clip_ckpt = train_config("clip", "configs/clip/digits.yaml", args.run_dir)
    images, captions, labels = test_pairs()
    dm = DigitsDataModule(image_size=16, seed=0, captions="templates")
    for norm in args.only:
        trained = (args.run_dir / f"prior-{norm}" / "version_0" / "checkpoints" / "last.ckpt").is_file()
        start = time.perf_counter()
        ckpt = train_config(
            f"prior-{norm}", "configs/unclip/digits_prior.yaml", args.run_dir,
            CLIP_KEY, str(clip_ckpt), SPACE_KEY, str(clip_ckpt), NORM_KEY, norm,
        )  # fmt: skip
        fit_s = time.perf_counter() - start
        prior = load_model(ckpt, generative=True)
        clip = prior.space.clip
        with torch.no_grad():
            image_emb = clip.encode_image(images)
            class_emb = clip.class_embeddings(dm.zero_shot_prompts("test"))
        text_emb = text_embeddings(prior, captions)
        row = out.setdefault("variants", {}).setdefault(norm, {})
        if not trained:  # a run found trained keeps the fit time recorded when it was trained
            row["fit_seconds"] = fit_s
        runs = [(g, 2) for g in args.guidance] + [(1.0, 1)]
        for g, k in runs:
            start = time.perf_counter()
            pred = sample_image_embeddings(
                prior, captions, candidates=k, guidance=g, generator=torch.Generator().manual_seed(0)
            )
            seconds = time.perf_counter() - start
            figures = prior_figures(pred, image_emb, text_emb, labels, class_emb, torch.Generator().manual_seed(0))
            figures["sample_seconds"] = seconds
            row[f"s={g:g} k={k}"] = figures
            name = f"prior {norm} s={g:g} k={k}"
            store.add(
                {"model": name, "family": "unclip_prior", "dataset": "digits", "split": "test", "metric": m,
                 "value": v, "num_samples": len(captions), "extractor": "clip-digits", "sampler": "DDIM 50",
                 "steps": 50, "checkpoint": str(ckpt), "wall_time_s": seconds}
                for m, v in figures.items() if m != "sample_seconds"
            )  # fmt: skip
            print(name, json.dumps({k2: round(v, 4) for k2, v in figures.items()}))
        out["clip_checkpoint"] = str(clip_ckpt)
        out["pairs"] = len(captions)
        fresh = ("benchmark", "date", "machine", "command", "git_revision")
        save("unclip_prior", {k: v for k, v in out.items() if k not in fresh})


if __name__ == "__main__":
    main()
