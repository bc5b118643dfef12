"""CLIP and the captioner on captioned digits: what issue 16 asks them to show, measured.

    python benchmarks/clip.py [--run-dir runs/clip_bench]

1. Trains configs/clip/digits.yaml and scores the 359 test digits: zero-shot top-1 from the test
   split's own (held-out) label templates alone, per template and ensembled; image→text and
   text→image recall@1/@5 against the test captions (with chance and the share of test captions
   that are unique, which bounds exact-pair retrieval).
2. CLIP score ranking: for each test image, CLIP-S with its own caption against CLIP-S with the
   same caption naming another digit (drawn at random, seeded): the share ranked right.
3. Trains configs/captioner/digits.yaml on that CLIP, captions the test split (beam search), and
   judges the captions: the digit named against the digits classifier's reading of the image (and
   against the label), and the stroke-weight word against the weight measured on the image.
4. Re-captions the whole set with `lit-genvision caption` and reads the file back through
   DigitsDataModule(captions=FILE).

Writes benchmarks/results/clip.json.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import torch

HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, HERE)
from common import save, train_config  # noqa: E402

from lit_genvision.cli import main as cli  # noqa: E402
from lit_genvision.data import DigitsDataModule  # noqa: E402
from lit_genvision.data.base import to_unit_range  # noqa: E402
from lit_genvision.data.captions import (  # noqa: E402
    DIGIT_WORDS,
    attribute_words,
    caption_digit,
    caption_for,
    caption_words,
    digit_attributes,
    label_templates,
)
from lit_genvision.experiments.checkpoints import load_model  # noqa: E402
from lit_genvision.experiments.clip import split_features  # noqa: E402
from lit_genvision.methods.contrastive import retrieval_recall, zero_shot_logits  # noqa: E402
from lit_genvision.metrics.clip_score import clip_score  # noqa: E402
from lit_genvision.metrics.digits import load_digits_extractor  # noqa: E402


def name_another_digit(caption: str, label: int, other: int) -> str:
    """``caption`` with its digit (word or numeral) replaced by ``other``'s, articles fixed."""
    text = re.sub(rf"\b({DIGIT_WORDS[label]}|{label})\b", lambda m: DIGIT_WORDS[other] if m.group(0).isalpha()
                  else str(other), caption)  # fmt: skip
    text = re.sub(r"\ban (?=[^aeiou8])", "a ", text)
    return re.sub(r"\ba (?=(eight|8)\b)", "an ", text)


@torch.no_grad()
def clip_figures(ckpt: Path) -> dict:
    model = load_model(ckpt)
    dm = DigitsDataModule(captions="templates")
    image, text, labels = split_features(model, dm, "test")
    out: dict = {"test_images": len(image)}
    per_template = {}
    for t in label_templates("test"):
        classes = model.class_embeddings([[caption_for(k, {}, t)] for k in range(10)])
        per_template[t] = (zero_shot_logits(image, classes).argmax(1) == labels).double().mean().item()
    classes = model.class_embeddings(dm.zero_shot_prompts("test"))
    predicted = zero_shot_logits(image, classes).argmax(1)
    out["zero_shot_top1_ensemble"] = (predicted == labels).double().mean().item()
    out["zero_shot_top1_per_template"] = per_template
    out["zero_shot_per_class"] = [(predicted[labels == k] == k).double().mean().item() for k in range(10)]
    out |= retrieval_recall(image, text)
    captions = list(dm.split("test").fields["text"])
    out["retrieval_chance_r1"] = 1 / len(captions)
    out["unique_caption_share"] = sum(captions.count(c) == 1 for c in captions) / len(captions)
    g = torch.Generator().manual_seed(0)
    wrong = [(int(k) + int(torch.randint(1, 10, (1,), generator=g))) % 10 for k in labels]
    wrong_captions = [name_another_digit(c, int(k), w) for c, k, w in zip(captions, labels, wrong, strict=True)]
    assert all(caption_digit(c) == w for c, w in zip(wrong_captions, wrong, strict=True))
    own = clip_score(image, model.net.encode_text(captions))
    other = clip_score(image, model.net.encode_text(wrong_captions))
    out["clip_score_own_caption_mean"] = own.mean().item()
    out["clip_score_wrong_digit_mean"] = other.mean().item()
    out["clip_score_ranks_own_caption_higher"] = (own > other).double().mean().item()
    return out


@torch.no_grad()
def captioner_figures(ckpt: Path) -> dict:
    model = load_model(ckpt)
    dm = DigitsDataModule(captions="templates")
    dm.setup("fit")
    test = dm.split("test")
    images = to_unit_range(test.images)
    start = time.perf_counter()
    captions = [c for i in range(0, len(images), 128) for c in model.caption(images[i : i + 128])]
    seconds = time.perf_counter() - start
    _, probs = load_digits_extractor(16)(images)
    judged = probs.argmax(1)
    named = torch.tensor([-1 if (d := caption_digit(c)) is None else d for c in captions])
    measured = [w["weight"] for w in attribute_words(digit_attributes(test.images))]
    stated = [caption_words(c)["weight"] for c in captions]
    with_weight = [(s, m) for s, m in zip(stated, measured, strict=True) if s]
    return {
        "beam_width": model.beam_width,
        "caption_seconds_test_split": seconds,
        "digit_named_agrees_with_classifier": (named == judged).double().mean().item(),
        "digit_named_agrees_with_label": (named == test.labels).double().mean().item(),
        "classifier_agrees_with_label": (judged == test.labels).double().mean().item(),
        "captions_stating_a_weight_word": len(with_weight) / len(captions),
        "weight_word_right_when_stated": sum(s == m for s, m in with_weight) / max(1, len(with_weight)),
        "examples": captions[:12],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run-dir", type=Path, default=Path("runs/clip_bench"))
    args = p.parse_args()
    fit_seconds = {}
    start = time.perf_counter()
    clip_ckpt = train_config("clip", "configs/clip/digits.yaml", args.run_dir)
    fit_seconds["clip"] = time.perf_counter() - start
    figures = {"clip": clip_figures(clip_ckpt)}
    print(figures["clip"])
    start = time.perf_counter()
    cap_ckpt = train_config(
        "captioner", "configs/captioner/digits.yaml", args.run_dir, "--model.init_args.clip", str(clip_ckpt)
    )
    fit_seconds["captioner"] = time.perf_counter() - start
    figures["captioner"] = captioner_figures(cap_ckpt)
    print(figures["captioner"])
    out = args.run_dir / "digits_captions.parquet"
    assert cli(["caption", "--ckpt", str(cap_ckpt), "--out", str(out)]) == 0
    dm = DigitsDataModule(captions=str(out))
    dm.setup("fit")
    figures["recaptioned"] = {
        "file": str(out),
        "captions_read_back": sum(len(dm.split(s)) for s in ("train", "val", "test")),
        "first_test_captions": list(dm.split("test").fields["text"][:5]),
    }
    save("clip", {"fit_seconds": fit_seconds, **figures})


if __name__ == "__main__":
    main()
