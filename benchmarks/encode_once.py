"""Text-conditioned sampling before and after conditions are encoded once per ``sample()`` call.

Before (b690fca), a text model re-tokenised and re-encoded its prompts at every network evaluation: DDIM's
50 steps × one batched call of both guidance branches = 50 encodings of 2·N prompts for N samples. After,
``ConditionedNet.encode`` runs once per call. This script times ``sample(100)`` of one checkpoint of
``configs/diffusion/digits_text.yaml`` (DDIM 50, guidance 2, the frozen digits CLIP text tower) under both
code trees in alternating child processes on the same machine, counts the text encoder's calls, and checks
that both draw the same images:

    git worktree add /tmp/before b690fca
    python benchmarks/encode_once.py --ckpt runs/diffusion-text-digits/version_0/checkpoints/last.ckpt \\
        --before /tmp/before --rounds 3          # saves benchmarks/results/encode_once.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the repository root: `benchmarks.common`

from benchmarks.common import save  # noqa: E402

MEASURE = """
import json, sys, time, torch
torch.set_num_threads(2)
from lit_genvision.models import load_model
ckpt, num, repeats, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
model = load_model(ckpt)
encoder = model.net.text_encoder
calls = []
encode = encoder.encode
def counted(texts):
    calls.append(len(texts))
    return encode(texts)
encoder.encode = counted
model.sample(4, generator=torch.Generator().manual_seed(1))  # warm-up
times, images = [], None
for _ in range(repeats):
    calls.clear()
    t0 = time.perf_counter()
    images = model.sample(num, generator=torch.Generator().manual_seed(0))
    times.append(time.perf_counter() - t0)
torch.save(images, out)
print(json.dumps({"seconds": times, "encoder_calls": len(calls), "prompts_encoded": sum(calls)}))
"""


def measure(tree: Path, ckpt: str, num: int, repeats: int, out: Path) -> dict:
    """Time ``sample(num)`` with the ``lit_genvision`` of ``tree`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, ckpt, str(num), str(repeats), str(out)],
        capture_output=True, text=True, cwd=tree, env=env, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True, help="a checkpoint of configs/diffusion/digits_text.yaml")
    p.add_argument("--before", required=True, help="a checkout of the revision before encode-once (b690fca)")
    p.add_argument("--num", type=int, default=100, help="samples per call")
    p.add_argument("--repeats", type=int, default=2, help="timed calls per process")
    p.add_argument("--rounds", type=int, default=3, help="before/after process pairs, alternating")
    args = p.parse_args()
    import torch

    trees = {"before": Path(args.before).resolve(), "after": HERE.parent}
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, tree in trees.items():
                out = Path(tmp) / f"{name}.pt"
                runs[name].append(measure(tree, str(Path(args.ckpt).resolve()), args.num, args.repeats, out))
                print(name, r, runs[name][-1])
        same = torch.equal(torch.load(Path(tmp) / "before.pt"), torch.load(Path(tmp) / "after.pt"))
    summary = {
        name: {
            "median_s": statistics.median(t for run in rs for t in run["seconds"]),
            "seconds": [t for run in rs for t in run["seconds"]],
            "encoder_calls_per_sample_call": rs[-1]["encoder_calls"],
            "prompts_encoded_per_sample_call": rs[-1]["prompts_encoded"],
        }
        for name, rs in runs.items()
    }
    ratio = summary["before"]["median_s"] / summary["after"]["median_s"]
    print(
        f"sample({args.num}): before {summary['before']['median_s']:.2f} s "
        f"({summary['before']['encoder_calls_per_sample_call']} encoder calls), after "
        f"{summary['after']['median_s']:.2f} s ({summary['after']['encoder_calls_per_sample_call']}); "
        f"{ratio:.2f}× faster; same images: {same}"
    )
    save("encode_once", {"num": args.num, "summary": summary, "speedup": ratio, "same_images": same})


if __name__ == "__main__":
    main()
