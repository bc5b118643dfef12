"""The moving-digits video tokenizers side by side at matched training steps (issue 31).

    python benchmarks/video_tokenizers.py [--run-dir runs/video_tokenizers] [--steps 1500] [--only fsq lfq kl]

Each config (configs/tokenizer/digits_video_{fsq,lfq,kl}.yaml: the same causal 3-D conv encoder and decoder
around FSQ, LFQ or a KL bottleneck) is trained for the same number of steps, then `evaluate --reconstruct`
scores its reconstructions of the 1,000 test clips: per-frame digits-FD, digits-FVD, MSE, bits per clip, codebook
utilisation and perplexity. The floor: 1,000 real train clips scored the same way against the test clips.

Writes benchmarks/results/video_tokenizers.{json,sqlite}.
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
from lit_genvision.data import MovingDigitsDataModule  # noqa: E402
from lit_genvision.data.base import to_unit_range  # noqa: E402
from lit_genvision.experiments.store import ResultsStore  # noqa: E402
from lit_genvision.metrics.scoring import build_scorers, parse_metrics  # noqa: E402

TOKENIZERS = {name: f"configs/tokenizer/digits_video_{name}.yaml" for name in ("fsq", "lfq", "kl")}
METRICS = "digits_fd,digits_fvd"


def floor(num: int) -> dict[str, float]:
    """Per-frame digits-FD and digits-FVD of ``num`` real train clips (a seeded draw) against the test clips."""
    scorers = build_scorers(parse_metrics(METRICS), MovingDigitsDataModule(), "test", 32)
    clips = MovingDigitsDataModule().split("train").fields["video"]
    pick = torch.randperm(len(clips), generator=torch.Generator().manual_seed(0))[:num]
    for batch in clips[pick].split(250):
        for scorer in scorers:
            scorer.update(to_unit_range(batch))
    return {k: v for s in scorers for k, v in s.compute().items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", type=Path, default=Path("runs/video_tokenizers"))
    p.add_argument("--steps", type=int, default=1500, help="training steps of every tokenizer (matched)")
    p.add_argument("--only", nargs="*", default=list(TOKENIZERS))
    p.add_argument("--num", type=int, default=1000, help="test clips reconstructed (1,000: all of them)")
    args = p.parse_args()
    stem = "video_tokenizers"
    store = RESULTS / f"{stem}.sqlite"
    path = RESULTS / f"{stem}.json"
    out = json.loads(path.read_text()) if path.is_file() else {}
    out["steps"] = args.steps
    if "floor" not in out:
        out["floor"] = floor(args.num)
        print("floor", json.dumps(out["floor"]))
    for name in args.only:
        ckpt = args.run_dir / name / "version_0" / "checkpoints" / "last.ckpt"
        if not ckpt.is_file():
            start = time.perf_counter()
            train_config(name, TOKENIZERS[name], args.run_dir, "--trainer.max_steps", str(args.steps))
            out.setdefault("fit_seconds", {})[name] = time.perf_counter() - start
        if not ResultsStore(store).records(model=name):
            cli(["evaluate", "--ckpt", str(ckpt), "--reconstruct", "--name", name, "--store", str(store),
                 "--metrics", METRICS, "--num", str(args.num)])  # fmt: skip
        out.setdefault("tokenizers", {})[name] = {
            r["metric"]: r["value"] for r in ResultsStore(store).records(model=name)
        }
        print(name, json.dumps(out["tokenizers"][name]))
        fresh = ("benchmark", "date", "machine", "command", "git_revision")
        save(stem, {k: v for k, v in out.items() if k not in fresh})


if __name__ == "__main__":
    main()
