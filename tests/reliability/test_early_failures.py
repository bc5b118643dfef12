"""Issue 13, defect 9: `sample` and `evaluate` check their outputs and sample counts before any
model is loaded or image sampled, so a bad argument throws no work away."""

from __future__ import annotations

import pytest

from lit_genvision.cli import main
from lit_genvision.metrics.inception import InceptionExtractor
from lit_genvision.metrics.scoring import INCEPTION_FEATURES, METRICS, check_sample_count


@pytest.fixture
def load_calls(monkeypatch) -> list:
    """Replace ``load_model`` in both tools with a recorder that fails if it is ever reached."""
    calls: list = []

    def record(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a model was loaded although the run was bound to fail")

    for module in ("sample", "sources"):  # evaluate's sources load the checkpoint
        monkeypatch.setattr(f"lit_genvision.experiments.{module}.load_model", record)
    return calls


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_sample_to_a_path_under_a_file_fails_before_loading(tiny_checkpoint, tmp_path, load_calls, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    out = blocker / "x.png"
    assert main(["sample", "--ckpt", str(tiny_checkpoint), "--num", "4", "--out", str(out)]) == 2
    err = _one_error(capsys)
    assert f"--out {out} cannot be written because {blocker} is a file, not a folder" in err
    assert load_calls == []
    assert blocker.read_text() == "not a folder"


def test_sample_to_a_folder_path_fails_before_loading(tiny_checkpoint, tmp_path, load_calls, capsys):
    folder = tmp_path / "grid.png"
    folder.mkdir()
    assert main(["sample", "--ckpt", str(tiny_checkpoint), "--out", str(folder)]) == 2
    assert "is a folder, not a file" in _one_error(capsys)
    assert load_calls == []


def test_sample_creates_a_missing_output_folder(tiny_checkpoint, tmp_path):
    out = tmp_path / "new" / "folder" / "grid.npz"
    assert main(["sample", "--ckpt", str(tiny_checkpoint), "--num", "3", "--steps", "2", "--out", str(out)]) == 0
    assert out.is_file() and sorted(p.name for p in out.parent.iterdir()) == ["grid.npz"]


def test_evaluate_with_too_few_samples_for_digits_fd_fails_before_loading(
    tiny_checkpoint, tmp_path, load_calls, capsys
):
    store = tmp_path / "r.sqlite"
    argv = ["evaluate", "--ckpt", str(tiny_checkpoint), "--num-samples", "2", "--steps", "2", "--store", str(store)]
    assert main(argv) == 2
    err = _one_error(capsys)
    assert "--num 2 is too few for digits_fd" in err and "--num 65 or more" in err
    assert load_calls == [] and not store.exists()


def test_evaluate_fid_below_the_inception_dimension_fails_before_loading(tiny_checkpoint, tmp_path, load_calls, capsys):
    argv = ["evaluate", "--ckpt", str(tiny_checkpoint), "--metrics", "fid", "--num-samples", "500"]
    assert main([*argv, "--store", str(tmp_path / "r.sqlite")]) == 2
    err = _one_error(capsys)
    assert "too few for fid" in err and "2048-dimensional" in err and "--num 2049 or more" in err
    assert load_calls == []


def test_evaluate_to_an_unwritable_store_fails_before_loading(tiny_checkpoint, tmp_path, load_calls, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    store = blocker / "results.sqlite"
    assert main(["evaluate", "--ckpt", str(tiny_checkpoint), "--num-samples", "100", "--store", str(store)]) == 2
    assert f"--store {store} cannot be written because {blocker} is a file" in _one_error(capsys)
    assert load_calls == []


def test_minimum_sample_counts():
    check_sample_count(["digits_fd", "recognised"], 65)
    with pytest.raises(ValueError, match="--num 64 is too few for digits_fd"):
        check_sample_count(["recognised", "digits_fd"], 64)
    check_sample_count(["kid"], 2)
    with pytest.raises(ValueError, match="too few for is"):
        check_sample_count(["is"], 9)
    assert METRICS["fid"].min_samples == InceptionExtractor.dim + 1 == INCEPTION_FEATURES + 1
