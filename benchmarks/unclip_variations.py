"""What DALL-E 2's image embedding gives for free, on test digits (issue 30): variations, reconstruction,
CLIP-space interpolation and text diffs, through the pipeline ``benchmarks/unclip.py`` composes.

    python benchmarks/unclip_variations.py --pipe runs/unclip/unclip.ckpt [--num 4] [--images 359]

Variations (unCLIP §3.1, ``UnCLIPModel.variations``: CLIP-encode, DDIM-invert under the embedding, DDIM η = 1 at the
decoder's guidance) of every test digit, K each, read by the digits classifier:
- kept: the share of variations classified as the input's digit;
- changed: the mean absolute pixel difference to the input (pixels in [0, 1]);
- memorisation: the mean L2 distance (pixels in [0, 1]) of each image to its nearest training digit, for the
  variations beside the real test digits themselves;
- diversity: the mean pairwise L2 distance among the K variations of one input;
- reconstruction: the mean squared error (pixels in [-1, 1]) of η = 0 at s = 1 from the inverted noise.
Interpolation (§3.2): every pair of a test "1" and a test "7" (the first 10 of each), 8 images along the slerp; the
share of rows whose classifier decision goes from 1 at the start to 7 at the end, and P(7) along the row. Text diffs
(§3.3): every test "1" moved toward "a photo of the numeral 7" from "a photo of the numeral 1", θ = 0 … 0.5; the
share read as a 7 at each θ.

Writes benchmarks/results/unclip_variations.json.
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
from common import save  # noqa: E402

from lit_genvision.data import DigitsDataModule  # noqa: E402
from lit_genvision.experiments.checkpoints import load_model  # noqa: E402
from lit_genvision.metrics.digits import load_digits_extractor  # noqa: E402


def split(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's digits (N, 1, 16, 16) in [-1, 1] and labels."""
    dm = DigitsDataModule(image_size=16, batch_size=512, seed=0)
    dm.setup("fit")
    images, labels = [], []
    for b in dm.make_loader(dm.split(name), shuffle=False):
        b = dm.device_transform(b, training=False)
        images.append(b["image"])
        labels.append(b["label"])
    return torch.cat(images), torch.cat(labels)


def nearest(images: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """L2 distance (pixels in [0, 1]) of each image to its nearest training digit."""
    return torch.cdist((images.flatten(1) + 1) / 2, (train.flatten(1) + 1) / 2).min(1).values


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipe", type=Path, default=Path("runs/unclip/unclip.ckpt"))
    p.add_argument("--num", type=int, default=4, help="variations per test digit")
    p.add_argument("--images", type=int, default=359, help="test digits used (the first N)")
    args = p.parse_args()
    model = load_model(args.pipe, generative=True)
    classify = load_digits_extractor(16)
    test, labels = split("test")
    train, _ = split("train")
    test, labels = test[: args.images], labels[: args.images]
    out: dict = {"pipe": str(args.pipe), "images": len(test), "variations_per_image": args.num}

    start = time.perf_counter()
    var = torch.cat([
        model.variations(test[i : i + 64], args.num, eta=1.0, generator=torch.Generator().manual_seed(i))
        for i in range(0, len(test), 64)
    ])  # fmt: skip
    out["variation_seconds"] = time.perf_counter() - start
    inputs = test.repeat_interleave(args.num, 0)
    predicted = classify(var)[1].argmax(1)
    k = args.num
    groups = ((var.flatten(1) + 1) / 2).view(len(test), k, -1)
    pairwise = torch.cdist(groups, groups)  # (N, K, K)
    out["variations"] = {
        "kept_digit": float((predicted == labels.repeat_interleave(k)).float().mean()),
        "mean_abs_pixel_change": float(((var - inputs).abs() / 2).mean()),
        "nearest_train_l2_variations": float(nearest(var, train).mean()),
        "nearest_train_l2_real_test": float(nearest(test, train).mean()),
        "pairwise_l2_among_variations": float(pairwise.sum() / (len(test) * k * (k - 1))),
    }
    same = torch.cat([model.variations(test[i : i + 64], 1, eta=0.0, guidance=1.0) for i in range(0, len(test), 64)])
    out["reconstruction_mse_eta0_s1"] = float((same - test).square().mean())
    print(json.dumps(out, indent=1))

    ones, sevens = test[labels == 1][:10], test[labels == 7][:10]
    flips, p7 = 0, []
    for i, a in enumerate(ones):
        for j, b in enumerate(sevens):
            row = model.interpolate_images(a[None], b[None], 8, generator=torch.Generator().manual_seed(i * 100 + j))
            probs = classify(row)[1]
            flips += int(probs[0].argmax() == 1 and probs[-1].argmax() == 7)
            p7.append(probs[:, 7])
    out["interpolation_1_to_7"] = {
        "pairs": len(ones) * len(sevens),
        "rows_going_from_1_to_7": flips / (len(ones) * len(sevens)),
        "mean_p7_along_the_row": [round(float(v), 3) for v in torch.stack(p7).mean(0)],
    }
    thetas = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    read = torch.stack(
        [
            classify(model.text_diff(a[None], "a photo of the numeral 1", "a photo of the numeral 7", thetas))[
                1
            ].argmax(1)
            for a in test[labels == 1]
        ]
    )  # fmt: skip  (n ones, thetas)
    out["text_diff_1_to_7"] = {
        "ones": len(read),
        "thetas": thetas,
        "share_read_as_7": [round(float(v), 3) for v in (read == 7).float().mean(0)],
        "share_read_as_1": [round(float(v), 3) for v in (read == 1).float().mean(0)],
    }
    print(json.dumps(out, indent=1))
    save("unclip_variations", out)


if __name__ == "__main__":
    main()
