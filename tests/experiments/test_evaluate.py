"""`lit-genvision evaluate` and `leaderboard` on the tiny checkpoint, and their bad-input paths."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sqlite3

import pytest

from lit_genvision.cli import main
from lit_genvision.experiments.evaluate import EvaluateOptions, add_arguments, evaluate
from lit_genvision.experiments.store import COLUMNS, PROTOCOL, ResultsStore
from lit_genvision.metrics.scoring import Scorer


def _eval(ckpt, store, *extra):
    return main(["evaluate", "--ckpt", str(ckpt), "--num-samples", "80", "--steps", "3", "--store", str(store), *extra])


def test_records_carry_the_protocol(tiny_checkpoint, tmp_path):
    store = tmp_path / "r.sqlite"
    assert _eval(tiny_checkpoint, store) == 0
    rows = ResultsStore(store).records()
    assert {r["metric"] for r in rows} == {"digits_fd", "recognised", "min_class_share", "class_entropy"}
    for r in rows:
        assert all(
            r[k] is not None
            for k in PROTOCOL
            + ("model", "family", "checkpoint_hash", "sampler", "steps", "wall_time_s", "device", "git_revision")
        )
        assert r["dataset"] == "digits" and r["split"] == "test" and r["num_samples"] == 80 and r["steps"] == 3
        assert r["family"] == "diffusion" and r["image_size"] == 8
    fd = next(r["value"] for r in rows if r["metric"] == "digits_fd")
    assert fd > 0


def test_same_seed_same_score(tiny_checkpoint, tmp_path):
    store = tmp_path / "r.sqlite"
    _eval(tiny_checkpoint, store, "--metrics", "digits_fd")
    _eval(tiny_checkpoint, store, "--metrics", "digits_fd")
    a, b = [r["value"] for r in ResultsStore(store).records(metric="digits_fd")]
    assert a == pytest.approx(b, rel=1e-9)


def test_interrupted_evaluate_writes_no_partial_record(tiny_checkpoint, tmp_path, monkeypatch):
    store = tmp_path / "r.sqlite"
    _eval(tiny_checkpoint, store)
    before = len(ResultsStore(store).records())

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Scorer, "compute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _eval(tiny_checkpoint, store)
    assert len(ResultsStore(store).records()) == before


def test_fewer_samples_than_feature_dimension_says_so(tiny_checkpoint, tmp_path, capsys):
    store = tmp_path / "r.sqlite"
    assert (
        main(["evaluate", "--ckpt", str(tiny_checkpoint), "--num-samples", "20", "--steps", "2", "--store", str(store)])
        == 2
    )
    assert "singular covariance in a 64-dimensional feature space" in capsys.readouterr().err
    assert ResultsStore(store).records() == []


def test_corrupt_store_is_one_clear_error(tiny_checkpoint, tmp_path, capsys):
    store = tmp_path / "r.sqlite"
    store.write_bytes(b"this is not sqlite" * 100)
    assert _eval(tiny_checkpoint, store) == 2
    err = capsys.readouterr().err
    assert "is not a readable SQLite file" in err and "move it aside" in err
    assert store.read_bytes().startswith(b"this is not sqlite")  # left untouched


def test_classifier_checkpoint_has_no_sample(classifier_checkpoint, tmp_path, capsys):
    assert _eval(classifier_checkpoint, tmp_path / "r.sqlite") == 2
    assert "holds a Classifier (classifier family), which has no sample()" in capsys.readouterr().err


def test_leaderboard_never_ranks_across_protocols(tmp_path, capsys):
    store = ResultsStore(tmp_path / "r.sqlite")
    base = {
        "dataset": "digits",
        "split": "test",
        "extractor": "x",
        "image_size": 16,
        "metric": "digits_fd",
        "status": "ok",
        "family": "diffusion",
        "sampler": "ddim(eta=0)",
        "checkpoint_hash": "h",
    }
    store.add(
        [
            base | {"model": "a", "num_samples": 500, "value": 3.0, "steps": 50},
            base | {"model": "b", "num_samples": 500, "value": 2.0, "steps": 20},
            base | {"model": "c", "num_samples": 100, "value": 1.0, "steps": 50},  # another protocol
        ]
    )
    store.close()
    out = tmp_path / "lb"
    assert main(["leaderboard", "--store", str(tmp_path / "r.sqlite"), "--out", str(out)]) == 0
    md = out.with_suffix(".md").read_text()
    sections = md.split("## ")[1:]
    assert len(sections) == 2
    n500 = next(s for s in sections if "N=500" in s)
    assert n500.index("| 1 | b |") < n500.index("| 2 | a |") and "| c |" not in n500
    assert out.with_suffix(".png").is_file()


def test_baseline_floor_is_far_below_broken_baselines(tmp_path):
    store = tmp_path / "r.sqlite"
    for b in ("real", "one-class"):
        main(["evaluate", "--baseline", b, "--num-samples", "300", "--repeats", "2", "--store", str(store)])
    values = {r["model"]: r["value"] for r in ResultsStore(store).records(metric="digits_fd")}
    assert values["baseline:real"] * 10 < values["baseline:one-class"]
    coverage = {r["model"]: r["value"] for r in ResultsStore(store).records(metric="min_class_share")}
    assert coverage["baseline:one-class"] == 0 and coverage["baseline:real"] > 0.05


def test_baseline_at_another_image_size_draws_and_records_digits_of_that_size(tmp_path, monkeypatch):
    """--image-size 32 is the floor of the 32×32 GANs: the real digits drawn at 32×32, recorded as such."""
    import lit_genvision.experiments.sources as sources

    drawn = []
    original = sources.baseline_images
    monkeypatch.setattr(sources, "baseline_images", lambda *a: drawn.append(original(*a)) or drawn[-1])
    store = tmp_path / "r.sqlite"
    args = ["--baseline", "real", "--image-size", "32", "--num-samples", "100", "--repeats", "1"]
    assert main(["evaluate", *args, "--store", str(store)]) == 0
    assert drawn[0].shape[-2:] == (32, 32)
    assert {r["image_size"] for r in ResultsStore(store).records()} == {32}


def test_store_schema_has_every_column(tmp_path):
    ResultsStore(tmp_path / "r.sqlite").close()
    cols = {row[1] for row in sqlite3.connect(tmp_path / "r.sqlite").execute("PRAGMA table_info(results)")}
    assert set(COLUMNS) <= cols


def test_unknown_metric_is_rejected(tiny_checkpoint, tmp_path, capsys):
    assert _eval(tiny_checkpoint, tmp_path / "r.sqlite", "--metrics", "fud") == 2
    assert "unknown metric(s) fud" in capsys.readouterr().err


def test_typed_options_have_the_command_lines_fields_and_defaults():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parsed = parser.parse_args(["--ckpt", "x.ckpt"])
    fields = {f.name for f in dataclasses.fields(EvaluateOptions)}
    assert set(vars(parsed)) == fields - {"ckpt_source"}  # the CLI sets ckpt_source only for a URL
    assert EvaluateOptions.from_namespace(parsed) == EvaluateOptions(ckpt="x.ckpt")


def test_typed_evaluate_records_what_the_command_line_records_and_parses_nothing(
    tiny_checkpoint, tmp_path, monkeypatch
):
    """`evaluate(EvaluateOptions(...))`, the entry point below the CLI, gives the CLI's scores for
    the same checkpoint and seed without building an argparse parser."""
    cli_store, typed_store = tmp_path / "cli.sqlite", tmp_path / "typed.sqlite"
    assert _eval(tiny_checkpoint, cli_store, "--seed", "4", "--batch-size", "40", "--name", "m") == 0

    plain_init = argparse.ArgumentParser.__init__

    def no_plain_parser(self, *args, **kwargs):  # jsonargparse's subclass still rebuilds the model's config
        if type(self) is argparse.ArgumentParser:
            raise AssertionError("the typed evaluate built an argparse parser")
        plain_init(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "__init__", no_plain_parser)
    options = EvaluateOptions(ckpt=tiny_checkpoint, num_samples=80, steps=3, seed=4, batch_size=40, name="m")
    records = evaluate(dataclasses.replace(options, store=typed_store))
    monkeypatch.undo()
    keys = ("model", "metric", "value", "num_samples", "steps", "sampler", "checkpoint_hash", "split")
    cli = sorted(tuple(r[k] for k in keys) for r in ResultsStore(cli_store).records())
    typed = sorted(tuple(r[k] for k in keys) for r in ResultsStore(typed_store).records())
    assert typed == cli and len(typed) == len(records) == 4


@pytest.mark.parametrize(
    "changes, message",
    [
        ({}, "evaluate needs exactly one of a checkpoint (--ckpt) and a baseline (--baseline)."),
        ({"ckpt": "x.ckpt", "baseline": "real"}, "evaluate needs exactly one of"),
        ({"baseline": "zeros"}, "--baseline must be one of real, noise, one-class, mean-image, got 'zeros'."),
    ],
)
def test_typed_options_refuse_what_argparse_would(changes, message, tmp_path):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        evaluate(EvaluateOptions(store=tmp_path / "r.sqlite", **changes))


def test_leaderboard_ranks_tokenizers_only_at_equal_bits_per_image(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    base = {"dataset": "digits", "split": "test", "extractor": "tokens", "image_size": 16, "num_samples": 359}
    base |= {"status": "ok", "family": "tokenizer", "sampler": "reconstruct", "steps": 0, "checkpoint_hash": "h"}
    store.add(
        [
            base | {"model": "vq", "metric": "utilisation", "value": 0.2, "bits_per_image": 144.0},
            base | {"model": "lfq", "metric": "utilisation", "value": 0.9, "bits_per_image": 144.0},
            base | {"model": "rvq", "metric": "utilisation", "value": 0.95, "bits_per_image": 256.0},
        ]
    )
    store.close()
    out = tmp_path / "lb"
    assert main(["leaderboard", "--store", str(tmp_path / "r.sqlite"), "--out", str(out)]) == 0
    sections = out.with_suffix(".md").read_text().split("## ")[1:]
    at_144 = next(s for s in sections if "144 bits/image" in s)
    assert len(sections) == 2 and "| rvq |" not in at_144
    assert at_144.index("| 1 | lfq |") < at_144.index("| 2 | vq |")  # utilisation: higher is better
