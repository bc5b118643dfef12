from __future__ import annotations

import torch

from lit_genvision.data import DigitsDataModule, load_digits_uint8


def test_digits_are_real_and_upsampled():
    images, labels = load_digits_uint8(16)
    assert images.shape == (1797, 1, 16, 16) and images.dtype == torch.uint8
    assert set(labels.tolist()) == set(range(10))
    assert images.max() == 255 and images.min() == 0


def test_splits_are_fixed_disjoint_and_cover_the_set():
    a, b = DigitsDataModule(seed=0), DigitsDataModule(seed=0)
    a.setup(), b.setup()
    for name in ("train", "val", "test"):
        torch.testing.assert_close(a.split(name).images, b.split(name).images)
    sizes = {k: len(v) for k, v in a.splits.items()}
    assert sum(sizes.values()) == 1797 and sizes == {"train": 1258, "val": 180, "test": 359}
    c = DigitsDataModule(seed=1)
    c.setup()
    assert not torch.equal(c.split("test").labels, a.split("test").labels)


def test_batch_contract_after_transfer():
    dm = DigitsDataModule(image_size=16, batch_size=32)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].dtype == torch.uint8  # kept as uint8 until the device
    batch = dm.on_after_batch_transfer(batch, 0)
    x = batch["image"]
    assert x.dtype == torch.float32 and x.shape == (32, 1, 16, 16)
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1
    assert batch["label"].shape == (32,)


def test_train_order_depends_on_the_pass_count_which_the_state_dict_carries():
    dm = DigitsDataModule(batch_size=16)
    dm.setup()
    loader = dm.train_dataloader()
    passes = [next(iter(loader))["label"] for _ in range(3)]
    assert not torch.equal(passes[0], passes[1])
    state = dm.state_dict()
    assert state == {"train_pass": 2, "batches_in_pass": 0}  # no trainer consumed a batch

    resumed = DigitsDataModule(batch_size=16)
    resumed.load_state_dict({"train_pass": 1, "batches_in_pass": 0})
    resumed.setup()
    loader = resumed.train_dataloader()
    loader.sampler.set_epoch(17)  # the trainer's epoch number does not matter
    torch.testing.assert_close(next(iter(loader))["label"], passes[1])


def test_a_pass_resumed_part_way_continues_with_its_next_batch():
    dm = DigitsDataModule(batch_size=16)
    dm.setup()
    loader = dm.train_dataloader()
    next(iter(loader))  # pass 0
    second = [b["index"] for b in loader]  # pass 1, all 78 batches
    resumed = DigitsDataModule(batch_size=16)
    resumed.load_state_dict({"train_pass": 1, "batches_in_pass": 3})
    resumed.setup()
    rest = [b["index"] for b in resumed.train_dataloader()]
    assert len(rest) == len(second) - 3
    for a, b in zip(rest, second[3:], strict=True):
        assert torch.equal(a, b)
    again = next(iter(resumed.train_dataloader()))["index"]  # the pass after it starts from its beginning
    third = DigitsDataModule(batch_size=16)
    third.load_state_dict({"train_pass": 2, "batches_in_pass": 0})
    third.setup()
    assert torch.equal(again, next(iter(third.train_dataloader()))["index"])


def test_a_checkpoint_at_the_end_of_a_pass_resumes_at_the_next_pass():
    dm = DigitsDataModule(batch_size=16)
    dm.load_state_dict({"train_pass": 4, "batches_in_pass": 1258 // 16})
    dm.setup()
    fresh = DigitsDataModule(batch_size=16)
    fresh.load_state_dict({"train_pass": 5, "batches_in_pass": 0})
    fresh.setup()
    assert torch.equal(next(iter(dm.train_dataloader()))["index"], next(iter(fresh.train_dataloader()))["index"])


def test_training_batches_are_augmented_only_while_training():
    from types import SimpleNamespace

    dm = DigitsDataModule(batch_size=64, augment_crop=2)
    dm.setup()
    batch = next(iter(dm.make_loader(dm.split("train"), shuffle=False)))
    plain = dm.device_transform(batch, training=False)["image"]
    dm.trainer = SimpleNamespace(training=False, global_rank=0, world_size=1)
    torch.testing.assert_close(dm.on_after_batch_transfer(batch, 0)["image"], plain)
    dm.trainer = SimpleNamespace(training=True, global_rank=0, world_size=1)
    assert not torch.equal(dm.on_after_batch_transfer(batch, 0)["image"], plain)


def test_loaders_shard_by_the_trainers_rank():
    from types import SimpleNamespace

    seen = []
    for rank in range(2):
        dm = DigitsDataModule(batch_size=16)
        dm.trainer = SimpleNamespace(training=True, global_rank=rank, world_size=2)
        dm.setup()
        loader = dm.train_dataloader()
        assert (loader.sampler.rank, loader.sampler.num_replicas) == (rank, 2)
        seen.append(torch.cat([b["label"] for b in loader]))
    assert len(seen[0]) == len(seen[1]) == (1258 // 2) // 16 * 16
