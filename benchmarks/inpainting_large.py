"""Inpainting large regions on the digits (issue 29): the upper, lower, left and right halves and the centre 8×8
of every test digit, filled by an inpainting checkpoint, beside what the visible part alone and a nearest-neighbour
completion say.

    python benchmarks/inpainting_large.py                                   # the references alone
    python benchmarks/inpainting_large.py --name NAME --ckpt PATH [sampling]
    python benchmarks/inpainting_large.py --name NAME --fit CONFIG [--run-dir runs/inpainting_large] [sampling] \\
        [-- CONFIG OVERRIDES, e.g. --trainer.max_steps 2000]
    sampling: [--steps S] [--sampler ddpm|ddim] [--eta E] [--guidance G] [--repaint JUMP RESAMPLE]

``--fit`` trains CONFIG into RUN_DIR/NAME unless that run already has a last checkpoint (``common.train_config``)
and scores its last checkpoint. The 359 test digits (``--limit N``: the first N, for a smoke test) of
``DigitsDataModule`` at 16×16, each under five fixed masks — upper, lower, left, right half (exactly 8 rows or
columns) and the centre 8×8 — are filled by ``model.inpaint(images, masks, generator=Generator().manual_seed(0))``
(with the sampling options given). Per mask:

- ``filled_judged_original_digit``: the share of fills the digits CNN (``load_digits_extractor(16)``) reads as
  the digit the original shows; ``known_pixels_exact``: whether every pixel outside the mask came back byte for
  byte (uint8); ``hole_rmse``: the root-mean-square error in the hole against the original, in [-1, 1] units;
- the references, which need no model: ``visible_alone`` — the CNN on the masked input with the hole at the
  background (−1); ``nearest_neighbour`` — for each test digit, the train digit (1,258) whose visible part is
  closest in L2, its pixels pasted into the hole, then the CNN; ``original`` — the CNN on the original.

Writes benchmarks/results/inpainting_large.json (``--result-name``): ``references`` keyed by the number of
digits, ``models`` keyed by NAME (with the sampler's name appended when sampling options are given), each merged
into what the file held, so several models and samplers can be compared.
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
from torch import Tensor  # noqa: E402

from lit_genvision.data import DigitsDataModule  # noqa: E402
from lit_genvision.data.base import to_uint8, to_unit_range  # noqa: E402
from lit_genvision.experiments.checkpoints import load_model  # noqa: E402
from lit_genvision.methods.repaint import RePaint  # noqa: E402
from lit_genvision.methods.sampling import SampleOptions  # noqa: E402
from lit_genvision.metrics.digits import load_digits_extractor  # noqa: E402

SIZE = 16
HEADER = ("benchmark", "date", "command", "git_revision", "machine")


def fixed_masks(size: int = SIZE) -> dict[str, Tensor]:
    """The five masks (1, 1, H, W) bool, True = to generate: the halves (size // 2 rows or columns) and the
    centre (size // 2)² square."""
    half, quarter = size // 2, size // 4
    masks = {name: torch.zeros(1, 1, size, size, dtype=torch.bool) for name in ("upper", "lower", "left", "right")}
    masks["upper"][..., :half, :] = True
    masks["lower"][..., half:, :] = True
    masks["left"][..., :, :half] = True
    masks["right"][..., :, half:] = True
    masks["centre"] = torch.zeros(1, 1, size, size, dtype=torch.bool)
    masks["centre"][..., quarter : quarter + half, quarter : quarter + half] = True
    return masks


def nearest_neighbour_fill(images: Tensor, train: Tensor, mask: Tensor) -> Tensor:
    """Each image (N, 1, H, W) with its hole (``mask`` (1, 1, H, W), True = unknown) filled by the pixels of the
    train image (M, 1, H, W) whose visible pixels are closest in L2."""
    visible = ~mask.flatten()
    distance = torch.cdist(images.flatten(1)[:, visible].double(), train.flatten(1)[:, visible].double())
    return torch.where(mask, train[distance.argmin(1)], images)


def references(images: Tensor, labels: Tensor, train: Tensor, agree) -> dict[str, dict[str, float]]:
    """Per mask: the CNN on the visible part alone (hole = −1), on the nearest-neighbour completion and on the
    original."""
    out = {}
    for name, mask in fixed_masks().items():
        out[name] = {
            "masked_share": mask.double().mean().item(),
            "visible_alone": agree(torch.where(mask, torch.full_like(images, -1), images), labels),
            "nearest_neighbour": agree(nearest_neighbour_fill(images, train, mask), labels),
            "original": agree(images, labels),
        }
    return out


def sampling_options(args: argparse.Namespace) -> SampleOptions:
    repaint = RePaint(*args.repaint) if args.repaint else None
    return SampleOptions(sampler=args.sampler, eta=args.eta, guidance=args.guidance, repaint=repaint)


def score_model(ckpt: Path, images: Tensor, labels: Tensor, args: argparse.Namespace, agree) -> dict:
    """The model's fills of every fixed mask, the training masks it saw and its sampler."""
    model = load_model(ckpt, generative=True)
    options = sampling_options(args)
    sampler, nfe = model.sampling_protocol(args.steps, options)
    result: dict = {"checkpoint": str(ckpt), "sampler": sampler, "nfe_per_image": nfe, "num_digits": len(images)}
    result["trained_steps"] = int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])
    generator = getattr(model, "inpaint_masks", None)
    if generator is not None:
        drawn = generator(4096, SIZE, SIZE, torch.Generator().manual_seed(0)).flatten(1).mean(1)
        result["training_masks"] = {
            "kinds": list(generator.kinds),
            "probs": list(generator.probs) if generator.probs is not None else None,
            "mean_coverage": drawn.mean().item(),
            "share_covering_40pct_or_more": (drawn >= 0.4).double().mean().item(),
        }
    uint8 = to_uint8(images)
    result["masks"] = {}
    for name, mask in fixed_masks().items():
        masks = mask.expand(len(images), 1, SIZE, SIZE).float()
        start = time.perf_counter()
        filled = model.inpaint(
            images, masks, generator=torch.Generator().manual_seed(0), steps=args.steps, options=options
        ).cpu()
        seconds = time.perf_counter() - start
        known = ~mask.expand_as(filled)
        hole = mask.expand_as(filled)
        result["masks"][name] = {
            "filled_judged_original_digit": agree(filled, labels),
            "known_pixels_exact": bool(torch.equal(to_uint8(filled)[known], uint8[known])),
            "hole_rmse": (filled[hole] - images[hole]).square().mean().sqrt().item(),
            "seconds": seconds,
        }
        print(f"  {name:>6}: {result['masks'][name]}", flush=True)
    halves = [result["masks"][k]["filled_judged_original_digit"] for k in ("upper", "lower", "left", "right")]
    result["halves_mean"] = sum(halves) / len(halves)
    result["halves_min"] = min(halves)
    return result


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The script's arguments, and the config overrides after ``--``."""
    overrides: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, overrides = argv[:at], argv[at + 1 :]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", help="the model's key in the results (and its run's folder with --fit)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--ckpt", type=Path, help="score this checkpoint of an inpainting model")
    source.add_argument("--fit", metavar="CONFIG", help="train CONFIG (relative to the repository) and score it")
    p.add_argument("--run-dir", type=Path, default=Path("runs/inpainting_large"))
    p.add_argument("--limit", type=int, default=None, help="the first N test digits only (smoke tests)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (the config's by default)")
    p.add_argument("--sampler", choices=("ddpm", "ddim"), default=None)
    p.add_argument("--eta", type=float, default=None, help="DDIM's η (selects DDIM)")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale on the known region")
    p.add_argument("--repaint", type=int, nargs=2, metavar=("JUMP", "RESAMPLE"), default=None)
    p.add_argument("--result-name", default="inpainting_large", help="benchmarks/results/<this>.json")
    args = p.parse_args(argv)
    if (args.ckpt or args.fit) and not args.name:
        p.error("--name is required with --ckpt or --fit: it keys the model's results.")
    if overrides and not args.fit:
        p.error("config overrides after -- need --fit CONFIG.")
    return args, overrides


def main(argv: list[str] | None = None) -> None:
    args, overrides = parse(sys.argv[1:] if argv is None else argv)
    test, train = DigitsDataModule().split("test"), DigitsDataModule().split("train")
    images, labels = to_unit_range(test.images), test.labels
    if args.limit is not None:
        images, labels = images[: args.limit], labels[: args.limit]
    judge = load_digits_extractor(SIZE)
    agree = lambda x, y: (judge(x)[1].argmax(1) == y).double().mean().item()  # noqa: E731

    previous = RESULTS / f"{args.result_name}.json"
    out: dict = (
        {k: v for k, v in json.loads(previous.read_text()).items() if k not in HEADER} if previous.is_file() else {}
    )
    out.setdefault("references", {})[str(len(images))] = refs = references(
        images, labels, to_unit_range(train.images), agree
    )
    for name, r in refs.items():
        print(f"reference {name:>6}: visible alone {r['visible_alone']:.1%}, nearest neighbour "
              f"{r['nearest_neighbour']:.1%}, original {r['original']:.1%}")  # fmt: skip

    if args.ckpt or args.fit:
        fit_seconds = None
        ckpt = args.ckpt
        if args.fit:
            existed = (args.run_dir / args.name / "version_0" / "checkpoints" / "last.ckpt").is_file()
            start = time.perf_counter()
            ckpt = train_config(args.name, args.fit, args.run_dir, *overrides)
            fit_seconds = None if existed else time.perf_counter() - start
        result = score_model(ckpt, images, labels, args, agree)
        result |= {"config": args.fit, "overrides": overrides, "fit_seconds": fit_seconds} if args.fit else {}
        given = sampling_options(args).given() or args.steps is not None
        key = f"{args.name} [{result['sampler']}, {args.steps or 'config'} steps]" if given else args.name
        out.setdefault("models", {})[key] = result
        print(f"{key}: halves {result['halves_mean']:.1%} (min {result['halves_min']:.1%}), "
              f"centre {result['masks']['centre']['filled_judged_original_digit']:.1%}")  # fmt: skip
    save(args.result_name, out)


if __name__ == "__main__":
    main()
