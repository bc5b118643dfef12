"""A video tokenizer is a ``VQModel`` with a causal video encoder: it reads ``video``, its tokens are (B, T', h, w),
its bits count every latent frame, it trains on clips and on first frames alone, and an image tokenizer refuses
the video-only setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lit_genvision.methods.quantizers import DiagonalGaussianBottleneck, FiniteScalarQuantizer
from lit_genvision.models import VQModel
from lit_genvision.nn import CausalVideoDecoder, CausalVideoEncoder, VQGANDecoder, VQGANEncoder

KW = {"image_size": 16, "frames": 5, "channels": 8, "channel_mults": [1, 2, 2], "depth": 1, "z_channels": 4}


def video_tokenizer(quantizer=None, **kwargs) -> VQModel:
    torch.manual_seed(0)
    return VQModel(
        CausalVideoEncoder(in_channels=1, norm_groups=4, **KW),
        CausalVideoDecoder(out_channels=1, norm_groups=4, **KW),
        quantizer or FiniteScalarQuantizer(levels=[8, 8, 8]),
        **kwargs,
    )


def test_a_video_tokenizer_reads_video_and_gives_a_token_grid_per_latent_frame():
    model = video_tokenizer().eval()
    assert model.required_keys() == ("video",) and model.image_shape == (1, 5, 16, 16)
    clip = torch.rand(2, 1, 5, 16, 16) * 2 - 1
    tokens = model.encode_indices(clip)
    assert tokens.shape == (2, 2, 4, 4)  # T' = 1 + 4/4, 16/4
    assert model.token_shape() == (2, 4, 4)
    assert model.bits_per_image() == 2 * 4 * 4 * 9  # FSQ 8·8·8: 9 bits a token
    assert model.decode_indices(tokens).shape == clip.shape
    assert torch.equal(model.encode_indices(clip[:, :, :1]), tokens[:, :1])  # an image: the clip's first tokens


def test_a_kl_video_tokenizer_gives_continuous_latents_per_latent_frame():
    model = video_tokenizer(DiagonalGaussianBottleneck(dim=3)).eval()
    z = model.encode_latents(torch.zeros(1, 1, 5, 16, 16))
    assert z.shape == (1, 3, 2, 4, 4) and model.decode_latents(z).shape == (1, 1, 5, 16, 16)


def test_training_takes_first_frames_alone_at_the_image_rate(monkeypatch):
    model = video_tokenizer(image_rate=0.5)
    seen: list[int] = []
    encode = model.encoder.forward
    monkeypatch.setattr(model.encoder, "forward", lambda x: seen.append(x.shape[2]) or encode(x))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    monkeypatch.setattr(model, "optimizers", lambda: opt)
    monkeypatch.setattr(model, "log", lambda *a, **k: None)
    monkeypatch.setattr(model, "log_dict", lambda *a, **k: None)
    monkeypatch.setattr(model, "manual_backward", lambda loss: loss.backward())
    torch.manual_seed(3)
    batch = {"video": torch.rand(2, 1, 5, 16, 16) * 2 - 1}
    for _ in range(30):
        model.training_step(batch, 0)
    assert set(seen) == {1, 5} and 6 <= seen.count(1) <= 24  # 30 draws of p = 0.5: ±3.3 standard deviations
    assert int(model.tokenizer_steps) == 30


def test_the_image_rate_is_refused_for_an_image_tokenizer():
    image = {"image_size": 16, "channels": 8, "channel_mults": [1, 2], "depth": 1, "attention_at": [], "z_channels": 4}
    with pytest.raises(ValueError, match="image tokenizer takes 0"):
        VQModel(
            VQGANEncoder(in_channels=1, norm_groups=4, **image),
            VQGANDecoder(out_channels=1, norm_groups=4, **image),
            FiniteScalarQuantizer(levels=[8, 8, 8]),
            image_rate=0.3,
        )


def test_a_video_tokenizer_fit_resumes_bitwise(tmp_path):
    """configs/tokenizer/digits_video_fsq.yaml at a tiny width on 48 training clips (6 batches a pass), interrupted
    after step 4 and resumed to 9: the weights, EMA, optimiser and RNG of an uninterrupted 9-step run (the
    image-rate draws come from the resumed global RNG)."""
    from reliability.test_resume_exact import assert_same_run, final_checkpoint, interrupted_and_resumed

    from lit_genvision.cli import main

    config = Path(__file__).resolve().parents[2] / "configs" / "tokenizer" / "digits_video_fsq.yaml"
    net = {"channels": "4", "z_channels": "4", "norm_groups": "2", "image_size": "16"}

    def args_for(name: str, steps: int) -> list[str]:
        args = ["--config", str(config), "--trainer.max_steps", str(steps), "--trainer.limit_val_batches", "1"]
        for part in ("encoder", "decoder"):
            for key, value in net.items():
                args += [f"--model.init_args.{part}.init_args.{key}", value]
        args += ["--data.init_args.image_size", "16", "--data.init_args.batch_size", "8"]
        args += ["--data.init_args.clips_per_split", "{train: 48, val: 8, test: 8}"]
        args += ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
        args += ["--trainer.default_root_dir", str(tmp_path), "--trainer.logger.init_args.save_dir", str(tmp_path)]
        return [*args, "--trainer.logger.init_args.name", name]

    assert main(["fit", *args_for("full", 9)]) == 0
    assert_same_run(final_checkpoint(tmp_path, "full"), interrupted_and_resumed(tmp_path, args_for, 4, 9))
