"""Checkpoints written by an earlier revision still load and produce what they produced then, and the
digits configs still train the same weights bit for bit where the math did not change.

The fixtures (``tests/fixtures/legacy/``) were written by ``make_legacy.py`` and ``reference_fits.py`` at the
revision their ``manifest.json`` names: one tiny checkpoint per family and what each produced at that revision
(samples, reconstructions, logits, embeddings, captions). The files that the parts of a model were loaded from
(CLIP, tokenizer, first stage) are gone, so the models that recorded them rebuild them from their records.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from fixtures.legacy.reference_fits import FITS, run_fit, weight_hashes
from fixtures.legacy.specs import SPECS, expected_outputs
from safetensors.torch import load_file

from lit_genvision.models import load_model

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


@pytest.fixture(scope="module")
def expected() -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    return load_file(LEGACY / "expected.safetensors"), json.loads((LEGACY / "expected_text.json").read_text())


@pytest.fixture
def two_threads():
    """The outputs were recorded with two threads (``make_legacy.py``); a matmul's reduction order, and so its
    last bits, depend on the thread count, so compare under the same count whatever ran before."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_a_checkpoint_of_an_earlier_revision_loads_and_produces_the_same(spec, expected, two_threads):
    tensors, texts = expected
    model = load_model(LEGACY / f"{spec.name}.ckpt")
    assert model.family == spec.family
    for key, value in expected_outputs(spec, model).items():
        name = f"{spec.name}/{key}"
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(value, tensors[name], rtol=0, atol=1e-6, msg=name)
        else:
            assert value == texts[name], name


@pytest.mark.parametrize("name", list(FITS))
def test_a_digits_config_trains_the_same_weights_bit_for_bit_for_40_steps(name, tmp_path):
    reference = json.loads((LEGACY / "reference_fits.json").read_text())[FITS[name][0]]
    hashes = weight_hashes(run_fit(name, tmp_path))
    assert hashes.keys() == reference.keys()
    changed = [k for k in reference if hashes[k] != reference[k]]
    assert not changed, f"{len(changed)} of {len(reference)} tensors differ after 40 steps, e.g. {changed[:3]}"
    shutil.rmtree(tmp_path, ignore_errors=True)
