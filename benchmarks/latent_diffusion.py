"""Latent diffusion's conditioning on the digits (issue 17): text-to-image in pixel and latent space at
matched wall time, layouts and semantic maps on digit scenes, and inpainting.

    python benchmarks/latent_diffusion.py [--run-dir runs/ldm] [--only text dit layout semantic inpainting]

Each config is trained from scratch unless its run already has a last checkpoint (the CLIP and the
KL first stage first); the latent model trains for the pixel model's wall time (``--trainer.max_time``).
Figures:

- text: ``evaluate`` with the model's class prompts (held-out wording) — digits-FD, recognised, class
  coverage, label agreement, CLIP score — and with every test caption as a prompt (``--prompt-file``):
  digits-FD and CLIP score of that prompt mixture, plus the share of its samples whose digit
  (digits classifier) is the one the caption names; training images/s and sampling s/100 images;
- first stage: reconstruction digits-FD (``evaluate --reconstruct``);
- layout / semantic map: samples for the layouts (maps) of 500 test scenes; box accuracy and ink
  outside the boxes (``metrics/layout.py``), beside the same measures on the real scenes;
- inpainting: every test digit under a seeded mask (boxes, brush strokes, borders): whether known
  pixels came back byte for byte, and the share judged the original digit by the digits classifier,
  beside the classifier on the masked input (holes as background) and on the original.

Writes benchmarks/results/latent_diffusion.{json,sqlite}.
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

from lit_genvision.cli import main as cli  # noqa: E402
from lit_genvision.data import DigitScenesDataModule, DigitsDataModule  # noqa: E402
from lit_genvision.data.base import to_uint8, to_unit_range  # noqa: E402
from lit_genvision.data.captions import caption_digit  # noqa: E402
from lit_genvision.experiments.checkpoints import load_model  # noqa: E402
from lit_genvision.experiments.store import ResultsStore  # noqa: E402
from lit_genvision.methods.masks import MaskGenerator  # noqa: E402
from lit_genvision.metrics.digits import load_digits_extractor  # noqa: E402
from lit_genvision.metrics.generation import generate_batches  # noqa: E402
from lit_genvision.metrics.layout import box_accuracy, ink_outside_boxes  # noqa: E402

STORE = RESULTS / "latent_diffusion.sqlite"
TEXT_KEY = "--model.init_args.net.init_args.text_encoder.init_args.checkpoint"
SPACE_KEY = "--model.init_args.space.init_args.checkpoint"


def fit_timed(name: str, config: str, run_dir: Path, *overrides: str) -> tuple[Path, float | None]:
    """(checkpoint, fit seconds, or None when the run existed already)."""
    existed = (run_dir / name / "version_0" / "checkpoints" / "last.ckpt").is_file()
    start = time.perf_counter()
    ckpt = train_config(name, config, run_dir, *overrides)
    return ckpt, None if existed else time.perf_counter() - start


def trained_steps(ckpt: Path) -> int:
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])


def sampling_seconds(ckpt: Path, num: int = 100) -> float:
    """Seconds to draw ``num`` images with the model's sampler (its class prompts), one batch."""
    model = load_model(ckpt, generative=True)
    start = time.perf_counter()
    model.sample(num, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def caption_agreement(ckpt: Path, captions: list[str], num: int, seed: int = 0) -> dict[str, float]:
    """The samples ``evaluate --prompt-file`` scores (same seed rule): the share whose digit is the one the
    caption names, and the smallest share of a class among the samples."""
    model = load_model(ckpt, generative=True)
    judge = load_digits_extractor(16)
    cond = {"text": [captions[i % len(captions)] for i in range(num)]}
    asked, drawn = [], []
    for batch in generate_batches(model, num, batch_size=250, seed=seed, cond=cond):
        asked += [caption_digit(t) for t in batch.prompts]
        drawn.append(judge(batch.images)[1].argmax(1))
    drawn_t, asked_t = torch.cat(drawn), torch.tensor(asked)
    shares = torch.bincount(drawn_t, minlength=10).double() / len(drawn_t)
    return {"caption_agreement": (drawn_t == asked_t).double().mean().item(), "smallest_class": shares.min().item()}


def evaluate(ckpt: Path, name: str, *options: str) -> None:
    """``lit-genvision evaluate`` into the benchmark's store, unless it holds this model's records already
    (a rerun of one part leaves the others' records as they are)."""
    if not ResultsStore(STORE).records(model=name):
        cli(["evaluate", "--ckpt", str(ckpt), "--name", name, "--store", str(STORE), *options])


def text(run_dir: Path, clip: Path, kl: Path, out: dict) -> None:
    dm = DigitsDataModule(captions="templates")
    captions = dm.caption_corpus("test")
    prompts = run_dir / "test_captions.txt"
    prompts.write_text("\n".join(captions) + "\n")
    pixel, pixel_s = fit_timed("text-pixel", "configs/diffusion/digits_text.yaml", run_dir, TEXT_KEY, str(clip))
    if pixel_s is None:
        pixel_s = out.get("fit_seconds", {}).get("text-pixel")
    budget = f"00:00:{int(pixel_s // 60):02d}:{int(pixel_s % 60):02d}" if pixel_s else None
    latent_overrides = [TEXT_KEY, str(clip), SPACE_KEY, str(kl), "--trainer.max_steps", "-1"]
    latent_overrides += ["--trainer.max_time", budget] if budget else []
    latent, latent_s = fit_timed("text-latent", "configs/diffusion/digits_latent.yaml", run_dir, *latent_overrides)
    out.setdefault("fit_seconds", {}).update({"text-pixel": pixel_s, "text-latent": latent_s})
    for name, ckpt in (("text-pixel", pixel), ("text-latent", latent)):
        evaluate(ckpt, name, "--metrics", "digits_fd,clip_score", "--clip", str(clip), "--num", "500")
        evaluate(ckpt, f"{name}:captions", "--metrics", "digits_fd,clip_score", "--clip", str(clip),
                 "--num", str(len(captions)), "--prompt-file", str(prompts))  # fmt: skip
        steps = trained_steps(ckpt)
        seconds = out["fit_seconds"].get(name)
        out.setdefault("text", {})[name] = {
            "steps": steps,
            "train_images_per_s": steps * dm.batch_size / seconds if seconds else None,
            "sampling_s_per_100": sampling_seconds(ckpt),
            **caption_agreement(ckpt, captions, len(captions)),
        }


def dit(run_dir: Path, clip: Path, out: dict) -> None:
    """U-Net vs DiT at matched parameters: digits_text_dit.yaml, the same steps and evaluation as text-pixel."""
    ckpt, seconds = fit_timed("text-dit", "configs/diffusion/digits_text_dit.yaml", run_dir, TEXT_KEY, str(clip))
    evaluate(ckpt, "text-dit", "--metrics", "digits_fd,clip_score", "--clip", str(clip), "--num", "500")
    model = load_model(ckpt, generative=True)
    out.setdefault("fit_seconds", {})["text-dit"] = seconds
    out.setdefault("text", {})["text-dit"] = {
        "steps": trained_steps(ckpt),
        "parameters": sum(p.numel() for p in model.net.backbone.parameters()),
        "sampling_s_per_100": sampling_seconds(ckpt),
    }
    pixel = load_model(run_dir / "text-pixel" / "version_0" / "checkpoints" / "last.ckpt", generative=True)
    out["text"].setdefault("text-pixel", {})["parameters"] = sum(p.numel() for p in pixel.net.backbone.parameters())


def scenes(run_dir: Path, kind: str, out: dict, num: int = 500) -> None:
    config = f"configs/diffusion/digits_{kind}.yaml"
    ckpt, seconds = fit_timed(kind, config, run_dir)
    model = load_model(ckpt, generative=True)
    test = DigitScenesDataModule().split("test")
    boxes, labels = test.fields["boxes"][:num], test.fields["box_labels"][:num]
    cond = (
        {"boxes": boxes, "box_labels": labels}
        if kind == "layout"
        else {"semantic_map": test.fields["semantic_map"][:num]}
    )
    images = torch.cat([b.images for b in generate_batches(model, num, batch_size=250, seed=0, cond=cond)])
    real = to_unit_range(test.images[:num])
    judge = load_digits_extractor(16)
    out[kind] = {
        "fit_seconds": seconds,
        "steps": trained_steps(ckpt),
        "box_accuracy": box_accuracy(images, boxes, labels, judge),
        "ink_outside_boxes": ink_outside_boxes(images, boxes, labels),
        "real_box_accuracy": box_accuracy(real, boxes, labels, judge),
        "real_ink_outside_boxes": ink_outside_boxes(real, boxes, labels),
    }


def inpainting(run_dir: Path, out: dict) -> None:
    ckpt, seconds = fit_timed("inpainting", "configs/diffusion/digits_inpainting.yaml", run_dir)
    model = load_model(ckpt, generative=True)
    test = DigitsDataModule().split("test")
    images, labels = to_unit_range(test.images), test.labels
    masks = MaskGenerator()(len(images), 16, 16, generator=torch.Generator().manual_seed(0))
    filled = model.inpaint(images, masks, generator=torch.Generator().manual_seed(0))
    known = masks == 0
    exact = torch.equal(to_uint8(filled)[known], test.images[known])
    judge = load_digits_extractor(16)
    agree = lambda x: (judge(x)[1].argmax(1) == labels).double().mean().item()  # noqa: E731
    out["inpainting"] = {
        "fit_seconds": seconds,
        "steps": trained_steps(ckpt),
        "known_pixels_exact": exact,
        "masked_share": masks.mean().item(),
        "filled_judged_original_digit": agree(filled),
        "masked_input_judged_original_digit": agree(torch.where(known, images, torch.full_like(images, -1))),
        "original_judged_original_digit": agree(images),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run-dir", type=Path, default=Path("runs/ldm"))
    p.add_argument("--only", nargs="*", default=["layout", "semantic", "inpainting", "text"])
    p.add_argument(
        "--pixel-fit-seconds",
        type=float,
        default=None,
        help="the pixel text model's fit time when its run exists already (the latent model trains as long)",
    )
    args = p.parse_args()
    args.run_dir.mkdir(parents=True, exist_ok=True)
    if not ResultsStore(STORE).records(model="baseline:real"):
        cli(["evaluate", "--baseline", "real", "--store", str(STORE)])
    previous = RESULTS / "latent_diffusion.json"  # a partial rerun (--only) keeps the other parts' figures
    header = ("benchmark", "date", "command", "git_revision", "machine", "records")
    out: dict = (
        {k: v for k, v in json.loads(previous.read_text()).items() if k not in header} if previous.is_file() else {}
    )
    for kind in ("layout", "semantic"):
        if kind in args.only:
            scenes(args.run_dir, kind, out)
    if "inpainting" in args.only:
        inpainting(args.run_dir, out)
    if "text" in args.only:
        clip, _ = fit_timed("clip", "configs/clip/digits.yaml", args.run_dir)
        kl, kl_s = fit_timed("kl", "configs/tokenizer/digits_kl.yaml", args.run_dir)
        evaluate(kl, "kl-first-stage", "--reconstruct", "--metrics", "digits_fd")
        out["first_stage_fit_seconds"] = kl_s or out.get("first_stage_fit_seconds")
        if args.pixel_fit_seconds:
            out.setdefault("fit_seconds", {})["text-pixel"] = args.pixel_fit_seconds
        text(args.run_dir, clip, kl, out)
    if "dit" in args.only:
        dit(args.run_dir, args.run_dir / "clip" / "version_0" / "checkpoints" / "last.ckpt", out)
    keep = ("model", "family", "sampler", "steps", "metric", "value", "num_samples", "wall_time_s", "notes")
    out["records"] = [{k: r[k] for k in keep} for r in ResultsStore(STORE).records()]
    save("latent_diffusion", out)


if __name__ == "__main__":
    main()
