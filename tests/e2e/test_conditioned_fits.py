"""One tiny fit per conditioning mode through `lit-genvision fit`, then the command that uses it:
text (a learned embedding, and CLIP's frozen tower), latent text on a frozen first stage, layouts,
semantic maps and inpainting (with a bitwise resume)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lit_genvision.callbacks.class_names import CLASSES_KEY
from lit_genvision.cli import main
from lit_genvision.data import DigitsDataModule
from lit_genvision.data.base import to_unit_range
from lit_genvision.experiments.checkpoints import load_model, run_classes
from lit_genvision.experiments.conditions import condition_from_arguments, model_classes
from lit_genvision.experiments.store import ResultsStore
from lit_genvision.models.pretrained import load_pretrained

ROOT = Path(__file__).resolve().parents[2]
NET = "model.init_args.net.init_args"
BACKBONE = f"{NET}.backbone.init_args"
LEARNED_TEXT = json.dumps(
    {"class_path": "lit_genvision.nn.LearnedTextEmbedding", "init_args": {"vocab_size": 400, "dim": 16}}
)
SCENES = json.dumps({"train": 64, "val": 16, "test": 16})


def tiny(config: str, root: Path, name: str, steps: int = 4, **extra: str) -> list[str]:
    """CLI arguments that shrink configs/diffusion/<config> to a seconds-long run."""
    overrides = {
        f"{BACKBONE}.channels": "8",
        f"{BACKBONE}.channel_mults": "[1, 2]",
        f"{BACKBONE}.norm_groups": "4",
        f"{BACKBONE}.heads": "2",
        "model.init_args.method.init_args.sampler.init_args.steps": "3",
        "model.init_args.method.init_args.schedule.init_args.timesteps": "50",
        "model.init_args.lr_scheduler.init_args.warmup_steps": "2",
        "data.init_args.batch_size": "16",
        "trainer.max_steps": str(steps),
        "trainer.check_val_every_n_epoch": "1",
        "trainer.limit_val_batches": "1",
        "trainer.enable_progress_bar": "false",
        "trainer.enable_model_summary": "false",
        "trainer.default_root_dir": str(root),
        "trainer.logger.init_args.save_dir": str(root),
        "trainer.logger.init_args.name": name,
    } | extra
    args = ["fit", "--config", str(ROOT / "configs" / "diffusion" / config)]
    for key, value in overrides.items():
        args += [f"--{key}", value]
    return args


def fit(args: list[str], root: Path, name: str) -> Path:
    assert main(args) == 0
    ckpt = root / name / "version_0" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    return ckpt


def test_text_fit_trains_its_tokenizer_and_samples_a_prompt(tmp_path):
    extra = {f"{NET}.text_encoder": LEARNED_TEXT, f"{NET}.text_pooled": "false", f"{BACKBONE}.context_dim": "16"}
    ckpt = fit(tiny("digits_text.yaml", tmp_path, "text", **extra), tmp_path, "text")
    assert (tmp_path / "text" / "version_0" / "tokenizer.json").is_file()  # trained on the captions at fit start
    out = tmp_path / "seven.npz"
    assert (
        main(["sample", "--ckpt", str(ckpt), "--prompt", "a seven", "--num", "3", "--steps", "2", "--out", str(out)])
        == 0
    )
    assert np.load(out)["arr_0"].shape == (3, 16, 16, 1)


def test_a_frozen_clip_text_tower_is_recorded_unchanged_and_rebuilt_without_its_file(tmp_path, clip_ckpt):
    clip = tmp_path / "clip.ckpt"
    clip.write_bytes(clip_ckpt.read_bytes())
    extra = {f"{NET}.text_encoder.init_args.checkpoint": str(clip)}
    args = tiny("digits_text.yaml", tmp_path, "clip-text", **extra)
    ckpt = fit(args, tmp_path, "clip-text")
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert saved["hyper_parameters"]["_pretrained"]["text_encoder"]["path"] == str(clip)
    tower = torch.load(clip, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in tower.items():
        if key.startswith("net.text_tower.") and not key.endswith("_extra_state"):
            assert torch.equal(saved["state_dict"][f"net.conditions.text.encoder.clip.{key[4:]}"], value), key  # frozen
    clip.unlink()  # the CLIP file is gone: the model rebuilds from its own checkpoint
    model = load_model(ckpt, generative=True)
    assert not any(p.requires_grad for p in model.net.text_encoder.parameters())
    assert model.sample(2, cond={"text": ["a 1", "a 2"]}, steps=2).shape == (2, 1, 16, 16)


def test_a_latent_fit_keeps_the_first_stage_frozen_and_scales_latents_to_unit_variance(tmp_path, kl_ckpt):
    extra = {
        f"{NET}.text_encoder": LEARNED_TEXT,
        f"{NET}.text_pooled": "false",
        f"{BACKBONE}.context_dim": "16",
        f"{BACKBONE}.attention_at": "[]",
        "model.init_args.space.init_args.checkpoint": str(kl_ckpt),
    }
    ckpt = fit(tiny("digits_latent.yaml", tmp_path, "latent", **extra), tmp_path, "latent")
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    first, _ = load_pretrained(kl_ckpt)  # the first stage as loaded (its EMA weights), before any fit
    for key, value in first.state_dict().items():  # unchanged by the fit
        assert torch.equal(saved[f"space.autoencoder.{key}"], value), key
    model = load_model(ckpt, generative=True)
    assert not any(p.requires_grad for p in model.space.autoencoder.parameters())
    images = to_unit_range(DigitsDataModule().split("train").images)
    z = model.space.autoencoder.encode(images).double()
    assert float(model.space.scale_factor) == pytest.approx(1 / z.std(unbiased=False).item(), rel=1e-4)
    assert (z * model.space.scale_factor).std().item() == pytest.approx(1.0, rel=1e-3)
    assert model.sample(2, cond={"text": ["a 1", "a 2"]}, steps=2).shape == (2, 1, 16, 16)  # decoded


def scene_args(config: str, root: Path, name: str) -> list[str]:
    extra = {
        f"{BACKBONE}.image_size": "16",
        "data.init_args.image_size": "16",
        "data.init_args.scenes_per_split": SCENES,
    }
    if config == "digits_layout.yaml":
        extra[f"{NET}.semantic_size"] = "16"
    else:
        extra[f"{BACKBONE}.attention_at"] = "[8]"
    return tiny(config, root, name, **extra)


def test_a_layout_fit_samples_a_layout_file(tmp_path, capsys):
    """The layout's labels are digits as a user names them (8, "3", "three"), mapped through the class list the
    checkpoint records (digit d is class d + 1 of the data module, 0 the background)."""
    ckpt = fit(scene_args("digits_layout.yaml", tmp_path, "layout"), tmp_path, "layout")
    recorded = torch.load(ckpt, map_location="cpu", weights_only=True)[CLASSES_KEY]
    assert recorded["names"][:2] == ["background", "zero"] and recorded["ids"][1:] == [str(d) for d in range(10)]
    arrays = []
    for name, labels in (("numbers", (8, 3)), ("words", ("eight", "three")), ("strings", ("8", "3"))):
        layout = tmp_path / f"{name}.json"
        layout.write_text(
            json.dumps([{"box": [1, 1, 9, 9], "label": labels[0]}, {"box": [8, 6, 16, 15], "label": labels[1]}])
        )
        out = tmp_path / f"{name}.npz"
        args = ["sample", "--ckpt", str(ckpt), "--layout", str(layout), "--num", "2", "--steps", "2", "--out", str(out)]
        assert main(args) == 0
        arrays.append(np.load(out)["arr_0"])
    assert arrays[0].shape == (2, 16, 16, 1)
    assert all(np.array_equal(arrays[0], other) for other in arrays[1:])  # one class however it is named
    model = load_model(ckpt, generative=True)
    classes = model_classes(*run_classes(ckpt), model)
    cond = condition_from_arguments(model, 1, None, str(tmp_path / "words.json"), None, classes)
    assert cond["box_labels"].tolist() == [[9, 4]]
    (tmp_path / "bad.json").write_text(json.dumps([{"box": [1, 1, 9, 9], "label": "eleven"}]))
    args = ["sample", "--ckpt", str(ckpt), "--layout", str(tmp_path / "bad.json"), "--out", str(tmp_path / "x.npz")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--layout entry 0 names class 'eleven', which this model does not know; name one of" in err
    assert "three (3)" in err and err.count("\n") == 1


def test_a_semantic_map_fit_samples_a_map_png(tmp_path):
    ckpt = fit(scene_args("digits_semantic.yaml", tmp_path, "semantic"), tmp_path, "semantic")
    semantic = np.zeros((16, 16), np.uint8)
    semantic[2:12, 3:10] = 5
    Image.fromarray(semantic).save(tmp_path / "map.png")
    out = tmp_path / "scenes.npz"
    args = ["sample", "--ckpt", str(ckpt), "--semantic-map", str(tmp_path / "map.png"), "--num", "2"]
    assert main([*args, "--steps", "2", "--out", str(out)]) == 0
    assert np.load(out)["arr_0"].shape == (2, 16, 16, 1)


@pytest.fixture(scope="module")
def inpaint_ckpt(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inpaint")
    return fit(tiny("digits_inpainting.yaml", root, "inpaint"), root, "inpaint")


def inpaint(ckpt: Path, root: Path, images: np.ndarray, masks: np.ndarray, *options: str) -> int:
    """``lit-genvision inpaint`` on arrays written as the .npz inputs it reads; the output is root/out.npz."""
    np.savez(root / "in.npz", images)
    np.savez(root / "masks.npz", masks)
    args = ["--ckpt", str(ckpt), "--images", str(root / "in.npz"), "--masks", str(root / "masks.npz")]
    return main(["inpaint", *args, *options, "--out", str(root / "out.npz")])


def test_inpaint_command_keeps_every_known_byte(tmp_path, inpaint_ckpt):
    images = DigitsDataModule().split("test").images[:5].permute(0, 2, 3, 1).numpy()
    masks = np.zeros((5, 16, 16), np.uint8)
    masks[:, 4:12, 2:9] = 1
    assert inpaint(inpaint_ckpt, tmp_path, images, masks, "--steps", "2") == 0
    filled = np.load(tmp_path / "out.npz")["arr_0"]
    known = masks[..., None] == 0
    assert np.array_equal(filled[known], images[known])
    assert not np.array_equal(filled[~known], images[~known])


def test_inpaint_command_with_repaint_keeps_every_known_byte(tmp_path, inpaint_ckpt):
    images = DigitsDataModule().split("test").images[:3].permute(0, 2, 3, 1).numpy()
    masks = np.zeros((3, 16, 16), np.uint8)
    masks[:, :8] = 1  # the upper half
    assert inpaint(inpaint_ckpt, tmp_path, images, masks, "--steps", "3", "--repaint", "1", "2") == 0
    filled = np.load(tmp_path / "out.npz")["arr_0"]
    known = masks[..., None] == 0
    assert np.array_equal(filled[known], images[known])


def test_inpaint_command_refuses_masks_of_another_size(tmp_path, capsys, inpaint_ckpt):
    images, masks = np.zeros((2, 16, 16, 1), np.uint8), np.zeros((2, 8, 8), np.uint8)
    assert inpaint(inpaint_ckpt, tmp_path, images, masks) == 2
    assert "one H×W mask per image" in capsys.readouterr().err


def test_an_inpainting_run_resumes_bitwise(tmp_path):
    """Masks are drawn from the global RNG, which the checkpoint restores: a resumed run equals an uninterrupted one."""
    full = fit(tiny("digits_inpainting.yaml", tmp_path, "full", steps=12), tmp_path, "full")
    first = fit(tiny("digits_inpainting.yaml", tmp_path, "split", steps=6), tmp_path, "split")
    assert main([*tiny("digits_inpainting.yaml", tmp_path, "split", steps=12), "--ckpt_path", str(first)]) == 0
    a = torch.load(full, map_location="cpu", weights_only=True)["state_dict"]
    b = torch.load(first.parent / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluate_reconstruct_scores_a_kl_first_stage_without_tokens(tmp_path, kl_ckpt):
    store = tmp_path / "r.sqlite"
    args = ["evaluate", "--ckpt", str(kl_ckpt), "--reconstruct", "--num-samples", "100", "--store", str(store)]
    assert main(args) == 0
    metrics = {r["metric"] for r in ResultsStore(store).records()}
    assert {"digits_fd", "recon_mse"} <= metrics and "bits_per_image" not in metrics
