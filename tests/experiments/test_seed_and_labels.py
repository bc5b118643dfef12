"""One seed rule and one label rule for `sample` and `evaluate` (issue 14): `sample --seed S`
writes the images `evaluate --seed S` scores, sample i of a class-conditional run has label
i mod K however the run is batched, `--label` chooses the labels, and the .npz records them."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from tests_helpers import ROOT, spy_scored_batches, tiny_diffusion_args

from lit_genvision.cli import main
from lit_genvision.data.base import to_uint8
from lit_genvision.experiments import evaluate
from lit_genvision.experiments.checkpoints import load_model
from lit_genvision.experiments.sample import batch_generator, parse_labels


@pytest.fixture(scope="module")
def conditional_ckpt(tmp_path_factory):
    """A tiny class-conditional digits DDPM (10 classes) written by `fit`."""
    root = tmp_path_factory.mktemp("cond")
    config = ROOT / "configs" / "diffusion" / "digits_conditional.yaml"
    main(["fit", *tiny_diffusion_args(root, "cond", max_steps=2, config=config)])
    return root / "cond" / "version_0" / "checkpoints" / "last.ckpt"


def sample_npz(ckpt, out, *args: str) -> dict[str, np.ndarray]:
    assert main(["sample", "--ckpt", str(ckpt), "--steps", "2", "--out", str(out), *args]) == 0
    return dict(np.load(out))


def eval_args(num: int, batch_size: int, seed: int) -> argparse.Namespace:
    return argparse.Namespace(num_samples=num, batch_size=batch_size, seed=seed, steps=2)


def as_npz_layout(images: torch.Tensor) -> np.ndarray:
    return to_uint8(images).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("batch_size", [7, 3])  # one batch, and 3 + 3 + 1
def test_sample_writes_the_images_evaluate_generates(tiny_checkpoint, tmp_path, batch_size):
    arr = sample_npz(tiny_checkpoint, tmp_path / "x.npz", "--seed", "3", "--num", "7", "--batch-size", str(batch_size))
    model = load_model(tiny_checkpoint, generative=True)
    batches = list(evaluate.evaluation_batches(model, eval_args(7, batch_size, 3), None))
    assert [b for b, _, _, _ in batches] == list(range(len(batches)))
    np.testing.assert_array_equal(arr["arr_0"], as_npz_layout(torch.cat([x for _, x, _, _ in batches])))
    assert "labels" not in arr  # an unconditional model has no condition to record
    # Sharded over two processes, the ranks draw the same batches between them.
    shards = [
        b for r in (0, 1) for b in evaluate.evaluation_batches(model, eval_args(7, batch_size, 3), None, None, r, 2)
    ]
    merged = torch.cat([x for _, x, _, _ in sorted(shards, key=lambda p: p[0])])
    np.testing.assert_array_equal(arr["arr_0"], as_npz_layout(merged))


def test_evaluate_command_scores_the_images_sample_writes(tiny_checkpoint, tmp_path, monkeypatch):
    scored = spy_scored_batches(monkeypatch)  # what the samples source draws
    common = ["--ckpt", str(tiny_checkpoint), "--steps", "2", "--seed", "3", "--batch-size", "32"]
    store = tmp_path / "r.sqlite"
    assert main(["evaluate", *common, "--num-samples", "70", "--metrics", "digits_fd", "--store", str(store)]) == 0
    out = tmp_path / "x.npz"
    assert main(["sample", *common, "--num", "70", "--out", str(out)]) == 0
    assert len(scored) == 3  # 32 + 32 + 6
    np.testing.assert_array_equal(np.load(out)["arr_0"], as_npz_layout(torch.cat(scored)))


def test_balanced_labels_run_over_the_whole_sample_and_are_stored(conditional_ckpt, tmp_path):
    arr = sample_npz(conditional_ckpt, tmp_path / "x.npz", "--num", "300", "--batch-size", "128")
    assert arr["arr_0"].shape == (300, 8, 8, 1) and arr["arr_0"].dtype == np.uint8
    np.testing.assert_array_equal(arr["labels"], np.arange(300) % 10)
    # The model was given those labels: the last batch (samples 256..299) starts at label 6.
    model = load_model(conditional_ckpt, generative=True)
    last = model.sample(44, cond={"label": torch.arange(256, 300) % 10}, steps=2, generator=batch_generator(0, 2))
    np.testing.assert_array_equal(arr["arr_0"][256:], as_npz_layout(last))


def test_one_label_for_every_sample(conditional_ckpt, tmp_path):
    arr = sample_npz(conditional_ckpt, tmp_path / "x.npz", "--num", "12", "--label", "7", "--seed", "5")
    assert arr["labels"].tolist() == [7] * 12
    model = load_model(conditional_ckpt, generative=True)
    sevens = model.sample(12, cond={"label": torch.full((12,), 7)}, steps=2, generator=batch_generator(5, 0))
    np.testing.assert_array_equal(arr["arr_0"], as_npz_layout(sevens))


def test_a_label_list_gives_one_label_per_sample(conditional_ckpt, tmp_path):
    arr = sample_npz(conditional_ckpt, tmp_path / "x.npz", "--num", "4", "--batch-size", "3", "--label", "3,1,4,1")
    assert arr["labels"].tolist() == [3, 1, 4, 1]


def test_evaluate_generates_the_labels_asked_for(conditional_ckpt):
    model = load_model(conditional_ckpt, generative=True)
    batches = evaluate.evaluation_batches(model, eval_args(20, 8, 0), None, parse_labels("7", 20, model.num_classes))
    assert torch.cat([y for _, _, y, _ in batches]).tolist() == [7] * 20
    balanced = evaluate.evaluation_batches(model, eval_args(20, 8, 0), None)
    assert torch.cat([y for _, _, y, _ in balanced]).tolist() == [i % 10 for i in range(20)]


@pytest.mark.parametrize(
    "label, num, message",
    [
        ("10", "4", "--label must be between 0 and 9 for this model, got 10."),
        ("-1", "4", "--label must be between 0 and 9 for this model, got -1."),
        ("1,2", "3", "--label lists 2 labels but 3 samples are asked for; give one or 3."),
        ("seven", "3", "--label must be a class index or a comma list of class indices, got 'seven'."),
    ],
)
def test_bad_labels_are_one_clear_sentence(conditional_ckpt, tmp_path, capsys, label, num, message):
    out = tmp_path / "x.npz"
    assert main(["sample", "--ckpt", str(conditional_ckpt), "--num", num, "--label", label, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0
    assert not out.exists()


def test_label_needs_a_conditional_model(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "x.npz"
    assert main(["sample", "--ckpt", str(tiny_checkpoint), "--label", "3", "--out", str(out)]) == 2
    assert "--label needs a class-conditional model" in capsys.readouterr().err
    assert not out.exists()
