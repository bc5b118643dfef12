"""DALL-E 2 on captioned digits (issue 30): text → prior → diffusion decoder, against the decoder fed the text
embedding directly (the paper's "importance of the prior"), scored like every generative model.

    python benchmarks/unclip.py [--run-dir runs/unclip] [--num 500]

Fits (unless there) the digits CLIP, a second CLIP of another seed (the judge of the CLIP score: the pipeline's own
CLIP would flatter it), the prior (``configs/unclip/digits_prior.yaml``), the diffusion decoder
(``configs/unclip/digits_decoder.yaml``), the text-conditioned diffusion model (``configs/diffusion/
digits_text.yaml``, on the same CLIP), the FSQ tokenizer and the transformer decoder over its tokens
(``configs/unclip/digits_token_decoder.yaml``); composes the pipelines (``lit-genvision compose unclip``: prior +
diffusion decoder, the same decoder fed the text embedding (``--embedding text``), prior + transformer decoder), and
scores the four models with ``lit-genvision evaluate`` (N samples, the class
prompts in the test split's wording, which training never saw): digits-FD (× the floor of this store), recognised
share, the digit named (label agreement), and the CLIP score by the second CLIP. The leaderboard ranks them together.

Writes benchmarks/results/unclip.{json,sqlite}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, HERE)
from common import RESULTS, save, train_config  # noqa: E402

from lit_genvision.cli import main as cli  # noqa: E402
from lit_genvision.experiments.store import ResultsStore  # noqa: E402

PRIOR_KEYS = (
    "--model.init_args.net.init_args.text_encoder.init_args.checkpoint",
    "--model.init_args.space.init_args.checkpoint",
)
DECODER_KEYS = ("--model.init_args.net.init_args.conditions.init_args.encoder.init_args.checkpoint",)
TEXT_KEYS = ("--model.init_args.net.init_args.text_encoder.init_args.checkpoint",)


def on(keys: tuple[str, ...], clip: Path) -> list[str]:
    return [item for key in keys for item in (key, str(clip))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", type=Path, default=Path("runs/unclip"))
    p.add_argument("--num", type=int, default=500)
    args = p.parse_args()
    stem = "unclip"
    store = RESULTS / f"{stem}.sqlite"
    path = RESULTS / f"{stem}.json"
    out = json.loads(path.read_text()) if path.is_file() else {}
    fits = out.setdefault("fit_seconds", {})

    def fit(name: str, config: str, *overrides: str) -> Path:
        start = time.perf_counter()
        trained = (args.run_dir / name / "version_0" / "checkpoints" / "last.ckpt").is_file()
        ckpt = train_config(name, config, args.run_dir, *overrides)
        if not trained:
            fits[name] = time.perf_counter() - start
        return ckpt

    clip = fit("clip", "configs/clip/digits.yaml")
    judge = fit("clip-seed1", "configs/clip/digits.yaml", "--seed_everything", "1")
    prior = fit("prior", "configs/unclip/digits_prior.yaml", *on(PRIOR_KEYS, clip))
    if not ResultsStore(store).records(model="baseline:real"):
        cli(["evaluate", "--baseline", "real", "--store", str(store), "--num", str(args.num)])
    floor = {r["metric"]: r["value"] for r in ResultsStore(store).records(model="baseline:real")}

    def pipeline(name: str, decoder: Path, embedding: str = "prior") -> Path:
        pipe = args.run_dir / f"{name.replace(' ', '-')}.ckpt"
        if not pipe.is_file():
            cli(["compose", "unclip", "--clip", str(clip), "--prior", str(prior), "--decoder", str(decoder),
                 "--out", str(pipe), "--embedding", embedding])  # fmt: skip
        return pipe

    def score(name: str, ckpt: Path) -> None:
        if not ResultsStore(store).records(model=name):
            cli(["evaluate", "--ckpt", str(ckpt), "--name", name, "--store", str(store), "--num", str(args.num),
                 "--metrics", "digits_fd,clip_score", "--clip", str(judge)])  # fmt: skip
        row = {r["metric"]: r["value"] for r in ResultsStore(store).records(model=name)}
        row["x_floor"] = row["digits_fd"] / floor["digits_fd"]
        out.setdefault("models", {})[name] = row
        print(name, json.dumps(row))
        fresh = ("benchmark", "date", "machine", "command", "git_revision")
        save(stem, {k: v for k, v in out.items() if k not in fresh})

    decoder = fit("decoder", "configs/unclip/digits_decoder.yaml", *on(DECODER_KEYS, clip))
    score("unclip", pipeline("unclip", decoder))
    score("unclip text-embedding", pipeline("unclip text-embedding", decoder, "text"))
    score("text-diffusion", fit("text-diffusion", "configs/diffusion/digits_text.yaml", *on(TEXT_KEYS, clip)))
    tokenizer = fit("tokenizer-fsq", "configs/tokenizer/digits_fsq.yaml")
    tokens = fit(
        "token-decoder", "configs/unclip/digits_token_decoder.yaml", *on(DECODER_KEYS, clip),
        "--model.init_args.tokenizer", str(tokenizer),
    )  # fmt: skip
    score("unclip token-decoder", pipeline("unclip token-decoder", tokens))
    cli(["leaderboard", "--store", str(store)])


if __name__ == "__main__":
    main()
