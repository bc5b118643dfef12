"""Open Images (Kuznetsova et al. 2020) object boxes, read as layouts for layout-to-image models:
each image comes with its boxes, their classes and a per-pixel semantic map rendered from them.

On-disk layout (the official release; SPLIT is train, validation or test):
    ROOT/SPLIT/<ImageID>.jpg  or  ROOT/images/SPLIT/<ImageID>.jpg
    ROOT/SPLIT-annotations-bbox.csv  or  ROOT/oidv6-SPLIT-annotations-bbox.csv
        header ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,
        IsGroupOf,IsDepiction,IsInside (the v6 train file adds XClick1X … XClick4Y); coordinates
        are fractions of the image side, LabelName a MID such as /m/0bt9lr
    ROOT/class-descriptions-boxable.csv  (MID,DisplayName rows, no header; up to v6)
        or ROOT/oidv7-class-descriptions-boxable.csv  (the same with a LabelName,DisplayName header)
``train`` is required; without ``validation`` a seeded 10% of train is held out as val, and
without ``test`` the val split doubles as test. Images are decoded lazily and resized (no crop,
so normalised boxes stay valid); an unreadable image is skipped, counted and warned once.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torch.utils.data import Dataset

from lit_genvision.data.base import ImageDataModule, pixels_to_unit_range
from lit_genvision.data.images import BAD_IMAGE_ERRORS, SkippedFiles, open_rgb, resize_to

LAYOUT = (
    "train/<ImageID>.jpg (or images/train/), train-annotations-bbox.csv (or oidv6-train-annotations-bbox.csv) "
    "and class-descriptions-boxable.csv (or oidv7-class-descriptions-boxable.csv), likewise for validation "
    "and test when present"
)
SPLITS = {"train": "train", "val": "validation", "test": "test"}  # split name → Open Images folder name
REQUIRED_COLUMNS = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")
BBOX_COLUMNS = (
    "ImageID",
    "Source",
    "LabelName",
    "Confidence",
    "XMin",
    "XMax",
    "YMin",
    "YMax",
    "IsOccluded",
    "IsTruncated",
    "IsGroupOf",
    "IsDepiction",
    "IsInside",
)
XCLICK_COLUMNS = tuple(f"XClick{i}{axis}" for axis in "XY" for i in range(1, 5))  # v6 train: extreme clicks
CLASS_FILES = ("class-descriptions-boxable.csv", "oidv7-class-descriptions-boxable.csv")
VAL_FRACTION = 0.1


def render_semantic_map(boxes: Tensor, labels: Tensor, size: int) -> Tensor:
    """Paint boxes into a (size, size) int64 map of class indices, 0 where no box lies.

    ``boxes`` (N, 4) are [xmin, ymin, xmax, ymax] fractions of the image side and ``labels`` (N,)
    their class indices; rows with a negative label are padding and ignored. A box covers the
    pixels whose centres lie in [xmin, xmax) × [ymin, ymax); a box too thin to hold a pixel centre
    still covers the pixel holding its own centre, so no object vanishes. Boxes are painted from
    the largest area to the smallest (ties in the given order), so small objects end on top.
    """
    out = torch.zeros(size, size, dtype=torch.int64)
    keep = labels >= 0
    boxes, labels = boxes[keep].double(), labels[keep]
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    for k in torch.argsort(area, descending=True, stable=True).tolist():
        x0, y0, x1, y1 = boxes[k].tolist()
        c0, c1 = _pixel_span(x0, x1, size)
        r0, r1 = _pixel_span(y0, y1, size)
        out[r0:r1, c0:c1] = int(labels[k])
    return out


def _pixel_span(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Pixels [first, last) whose centres (p + 0.5) / size lie in [lo, hi); at least the one holding the middle."""
    first = min(max(math.ceil(lo * size - 0.5), 0), size)
    last = min(max(math.ceil(hi * size - 0.5), 0), size)
    if last <= first:
        first = min(max(int((lo + hi) / 2 * size), 0), size - 1)
        last = first + 1
    return first, last


def flip_layouts(batch: dict[str, Tensor], generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Flip each sample of a batch horizontally with probability 1/2: its ``image`` (B, C, H, W),
    ``semantic_map`` (B, H, W) and ``boxes`` (B, M, 4) together (padding boxes stay zero)."""
    image = batch["image"]
    gdev = generator.device if generator is not None else image.device
    flip = (torch.rand(image.shape[0], device=gdev, generator=generator) < 0.5).to(image.device)
    out = dict(batch)
    out["image"] = torch.where(flip[:, None, None, None], image.flip(-1), image)
    if "semantic_map" in batch:
        out["semantic_map"] = torch.where(flip[:, None, None], batch["semantic_map"].flip(-1), batch["semantic_map"])
    if "boxes" in batch:
        b = batch["boxes"]
        mirrored = torch.stack([1 - b[..., 2], b[..., 1], 1 - b[..., 0], b[..., 3]], dim=-1)
        real = batch["box_labels"] >= 0 if "box_labels" in batch else torch.ones(b.shape[:-1], dtype=torch.bool)
        out["boxes"] = torch.where((flip[:, None] & real.to(flip.device))[..., None], mirrored, b)
    return out


def find_class_file(root: Path) -> Path:
    """The class description file under ``root`` (the v6 name first, then the v7 one)."""
    for name in CLASS_FILES:
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"Open Images: no {' or '.join(CLASS_FILES)} under {root}; expected {LAYOUT}.")


def read_class_descriptions(path: Path) -> list[tuple[str, str]]:
    """[(MID, DisplayName)] in file order, from a header-less (≤ v6) or headed (v7) class file."""
    out = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if not row or (n == 1 and [c.strip() for c in row] == ["LabelName", "DisplayName"]):
                continue
            if len(row) != 2 or not row[0].strip():
                raise ValueError(
                    f"{path} line {n} is {row!r}; expected two columns, LabelName (a MID) and DisplayName."
                )
            out.append((row[0].strip(), row[1].strip()))
    if not out:
        raise ValueError(f"{path} lists no classes; expected LabelName,DisplayName rows such as /m/0bt9lr,Dog.")
    return out


def read_bbox_csv(path: Path, mid_to_index: dict[str, int]) -> tuple[dict[str, list[tuple]], Counter]:
    """Boxes of the chosen classes from one ``*-annotations-bbox.csv``.

    Returns ({ImageID: [(class index, xmin, ymin, xmax, ymax), …] in file order}, counts of the
    rows left out: ``other_class`` (a MID not in ``mid_to_index``) and ``degenerate`` (empty once
    clamped to [0, 1])). Images without a chosen box do not appear.
    """
    boxes: dict[str, list[tuple]] = {}
    skipped: Counter = Counter(other_class=0, degenerate=0)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [c.strip() for c in next(reader, [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ValueError(
                f"{path} lacks the column(s) {', '.join(missing)}; expected the header {','.join(BBOX_COLUMNS)}."
            )
        extra = [c for c in header if c not in BBOX_COLUMNS + XCLICK_COLUMNS]
        if extra:
            raise ValueError(
                f"{path} has unexpected column(s) {', '.join(extra)}; expected the header {','.join(BBOX_COLUMNS)}."
            )
        col = {c: header.index(c) for c in REQUIRED_COLUMNS}
        for n, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{path} line {n} has {len(row)} fields; the header has {len(header)}.")
            index = mid_to_index.get(row[col["LabelName"]])
            if index is None:
                skipped["other_class"] += 1
                continue
            try:
                coords = [float(row[col[c]]) for c in ("XMin", "XMax", "YMin", "YMax")]
            except ValueError:
                coords = [math.nan]
            if not all(map(math.isfinite, coords)):
                raise ValueError(f"{path} line {n} has a non-numeric coordinate; XMin..YMax are fractions in [0, 1].")
            x0, x1, y0, y1 = (min(max(v, 0.0), 1.0) for v in coords)
            if x1 <= x0 or y1 <= y0:
                skipped["degenerate"] += 1
                continue
            boxes.setdefault(row[col["ImageID"]], []).append((index, x0, y0, x1, y1))
    return boxes, skipped


class OpenImagesBoxes(Dataset):
    """Lazily decoded Open Images with their boxes; an unreadable image is skipped (counted,
    warned once with its path) and the next readable one, (i + 1) % len, is returned in its place.

    Items: ``image`` uint8 (3, S, S); ``boxes`` float32 (M, 4) [xmin, ymin, xmax, ymax] in [0, 1],
    zero-padded; ``box_labels`` int64 (M,), -1-padded; ``semantic_map`` int64 (S, S).
    """

    def __init__(self, folder: Path, image_ids: list[str], boxes: Tensor, labels: Tensor, image_size: int) -> None:
        self.folder, self.image_size = folder, image_size
        # one numpy string array, not a list of Python strings: workers then share it without copy-on-access
        self.image_ids = np.asarray(image_ids, dtype=str)
        self.boxes, self.labels = boxes, labels  # (N, M, 4) float32, (N, M) int16
        self.skipped = SkippedFiles("Open Images image")

    def __len__(self) -> int:
        return len(self.image_ids)

    def subset(self, indices: Tensor) -> OpenImagesBoxes:
        """The same images at ``indices``, as a new dataset."""
        ids = [str(v) for v in self.image_ids[indices.numpy()]]
        return OpenImagesBoxes(self.folder, ids, self.boxes[indices], self.labels[indices], self.image_size)

    def path(self, i: int) -> Path:
        return self.folder / f"{self.image_ids[i]}.jpg"

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        n = len(self)
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {n} images")
        for k in range(n):
            j = (i + k) % n
            path = self.path(j)
            try:
                image = resize_to(open_rgb(path), self.image_size)
            except BAD_IMAGE_ERRORS as err:
                self.skipped.skip(str(path), err)
                continue
            boxes, labels = self.boxes[j].clone(), self.labels[j].long()
            return {
                "image": image,
                "boxes": boxes,
                "box_labels": labels,
                "semantic_map": render_semantic_map(boxes, labels, self.image_size),
            }
        raise RuntimeError(f"no readable image in {self.folder}; all {n} Open Images images failed to decode.")


class OpenImagesDataModule(ImageDataModule):
    """Open Images object boxes as layouts: ``image``, ``boxes``, ``box_labels`` and a
    ``semantic_map`` rendered from the boxes (class 0 is background; names in ``class_names``).

    Only images holding at least one box of the chosen classes are kept; their other boxes are
    dropped, and beyond ``max_boxes`` the later rows of the CSV are dropped too. Every kept box
    must name an image on disk (the annotations must match the images), so a class subset needs
    only the images of those classes.

    Args:
        root: folder holding the official layout (see the module docstring).
        classes: DisplayNames of the classes to keep, e.g. [Dog, Cat]; they become classes 1..K in
            this order. None keeps every class of the class description file, in its order.
        image_size: output side; images are resized without cropping, so boxes stay valid.
        max_boxes: boxes per image (padded with zero boxes of label -1).
        batch_size: per-process batch size.
        seed: seed of the held-out val split (when there is no validation folder) and of the shuffling.
        num_workers: DataLoader workers decoding JPEGs.
        augment_flip: random horizontal flips of training batches (image, boxes and semantic map together).
    """

    name = "openimages"
    provides = ("image", "boxes", "box_labels", "semantic_map")

    def __init__(
        self,
        root: str = "data/openimages",
        classes: list[str] | None = None,
        image_size: int = 64,
        max_boxes: int = 16,
        batch_size: int = 32,
        seed: int = 0,
        num_workers: int = 0,
        augment_flip: bool = False,
    ) -> None:
        super().__init__(
            batch_size=batch_size, seed=seed, num_workers=num_workers, augment_crop=0, augment_flip=augment_flip
        )
        if max_boxes < 1:
            raise ValueError(f"max_boxes must be at least 1, got {max_boxes}.")
        self.root, self.classes, self.image_size, self.max_boxes = Path(root), classes, image_size, max_boxes
        self.class_names: list[str] = ["background"]
        #: Each class's LabelName (MID, e.g. /m/0bt9lr), index for index with ``class_names`` ("" for background).
        self.class_ids: list[str] = [""]
        self.skipped_rows: Counter = Counter()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int:
        """Classes of the semantic map, background included (set up on first use)."""
        self.setup()
        return len(self.class_names)

    def _class_index(self) -> dict[str, int]:
        """{MID: class index} of the chosen classes; fills ``class_names``."""
        path = find_class_file(self.root)
        described = read_class_descriptions(path)
        if self.classes is None:
            self.class_names = ["background"] + [name for _, name in described]
            self.class_ids = [""] + [mid for mid, _ in described]
            return {mid: i for i, (mid, _) in enumerate(described, start=1)}
        dupes = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if dupes:
            raise ValueError(f"classes lists {', '.join(dupes)} more than once; name each class once.")
        names = {name for _, name in described}
        unknown = [c for c in self.classes if c not in names]
        if unknown:
            raise ValueError(
                f"unknown Open Images class(es) {', '.join(unknown)}; choose DisplayNames from {path.name}."
            )
        order = {c: i for i, c in enumerate(self.classes, start=1)}
        self.class_names = ["background", *self.classes]
        mids = {name: mid for mid, name in described}
        self.class_ids = ["", *(mids[c] for c in self.classes)]
        return {mid: order[name] for mid, name in described if name in order}

    def _split_files(self, folder_name: str) -> tuple[Path, Path] | None:
        """(image folder, bbox CSV) of one Open Images split; None when neither exists."""
        folders = [self.root / folder_name, self.root / "images" / folder_name]
        tables = [
            self.root / f"{folder_name}-annotations-bbox.csv",
            self.root / f"oidv6-{folder_name}-annotations-bbox.csv",
        ]
        folder = next((p for p in folders if p.is_dir()), None)
        table = next((p for p in tables if p.is_file()), None)
        if folder is None and table is None and folder_name != "train":
            return None
        if folder is None:
            raise FileNotFoundError(
                f"Open Images: no {folder_name}/ image folder under {self.root}; expected {LAYOUT}."
            )
        if table is None:
            raise FileNotFoundError(
                f"Open Images: no {tables[0].name} (or {tables[1].name}) under {self.root}; expected {LAYOUT}."
            )
        return folder, table

    def _read_split(self, folder: Path, table: Path, mid_to_index: dict[str, int]) -> OpenImagesBoxes:
        per_image, skipped = read_bbox_csv(table, mid_to_index)
        self.skipped_rows.update(skipped)
        on_disk = {e.name[:-4] for e in os.scandir(folder) if e.name.endswith(".jpg")}
        missing = [(image_id, len(rows)) for image_id, rows in per_image.items() if image_id not in on_disk]
        if missing:
            raise ValueError(
                f"{sum(n for _, n in missing)} rows of {table.name} name images that are not in {folder} "
                f"(first: {missing[0][0]}); the annotations do not match the images."
            )
        ids = sorted(per_image)
        boxes = torch.zeros(len(ids), self.max_boxes, 4, dtype=torch.float32)
        labels = torch.full((len(ids), self.max_boxes), -1, dtype=torch.int16)
        for i, image_id in enumerate(ids):
            rows = per_image[image_id]
            self.skipped_rows["over_max_boxes"] += max(len(rows) - self.max_boxes, 0)
            rows = rows[: self.max_boxes]
            labels[i, : len(rows)] = torch.tensor([r[0] for r in rows], dtype=torch.int16)
            boxes[i, : len(rows)] = torch.tensor([r[1:] for r in rows], dtype=torch.float32)
        return OpenImagesBoxes(folder, ids, boxes, labels, self.image_size)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if not self.root.is_dir():
            raise FileNotFoundError(f"Open Images root {self.root} does not exist; expected {LAYOUT}.")
        files = {split: self._split_files(folder_name) for split, folder_name in SPLITS.items()}
        mid_to_index = self._class_index()
        self.skipped_rows = Counter(other_class=0, degenerate=0, over_max_boxes=0)
        data = {split: self._read_split(*found, mid_to_index) for split, found in files.items() if found is not None}
        if not len(data["train"]):
            raise ValueError(
                f"no train image under {self.root} has a box of the chosen classes {self.class_names[1:]}."
            )
        held_out = "val" not in data
        if held_out:
            train = data["train"]
            n_val = max(1, round(VAL_FRACTION * len(train))) if len(train) > 1 else 0
            perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed))
            val_idx, train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values
            data["val"], data["train"] = train.subset(val_idx), train.subset(train_idx)
        data.setdefault("test", data["val"])
        self.splits = {split: data[split] for split in ("train", "val", "test")}
        distinct = {id(ds): ds for ds in self.splits.values()}.values()  # test may be val
        n_boxes = sum(int((ds.labels >= 0).sum()) for ds in distinct)
        note = " (val held out from train" if held_out else ""
        if files["test"] is None:
            note += "; test is val" if held_out else " (test is val"
        note += ")" if note else ""
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        rows = self.skipped_rows
        rank_zero_info(
            f"Open Images from {self.root}: {sizes} images{note}; {n_boxes} boxes of "
            f"{len(self.class_names) - 1} classes; rows skipped: {rows['other_class']} of other "
            f"classes, {rows['degenerate']} degenerate, {rows['over_max_boxes']} over "
            f"max_boxes={self.max_boxes}"
        )

    def device_transform(self, batch: dict, training: bool) -> dict:
        """uint8 images → float [-1, 1]; training batches get flips that keep boxes and semantic map aligned."""
        if isinstance(batch, dict) and "image" in batch and batch["image"].dtype == torch.uint8:
            batch = pixels_to_unit_range(batch)
            if training and self.augment_flip:
                batch = flip_layouts(batch)
        return batch
