"""The results store: one SQLite file of `evaluate` records that the leaderboard reads.

Every record carries its protocol (dataset, split, extractor, sample count, image size; and the
bits per image of a tokenizer's reconstructions) so the leaderboard never ranks numbers that are
not comparable.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

COLUMNS = {
    "created": "TEXT",
    "model": "TEXT",
    "family": "TEXT",
    "dataset": "TEXT",
    "split": "TEXT",
    "checkpoint": "TEXT",
    "checkpoint_hash": "TEXT",
    "metric": "TEXT",
    "value": "REAL",
    "num_samples": "INTEGER",
    "extractor": "TEXT",
    "sampler": "TEXT",
    "steps": "INTEGER",
    "image_size": "INTEGER",
    "wall_time_s": "REAL",
    "device": "TEXT",
    "git_revision": "TEXT",
    "status": "TEXT",
    "notes": "TEXT",
    "bits_per_image": "REAL",
}
PROTOCOL = ("dataset", "split", "extractor", "num_samples", "image_size")
#: What makes two records comparable: the protocol, and for a tokenizer's reconstructions the bits
#: per image it spends (NULL for generated samples), so tokenizers rank at equal rate only.
COMPARABLE = (*PROTOCOL, "bits_per_image")


class StoreError(RuntimeError):
    """The results store cannot be read or written."""


def default_store_path() -> Path:
    return Path(os.environ.get("LIT_GENVISION_STORE", "runs/results.sqlite"))


class ResultsStore:
    """Append-only records in ``results`` (one row per metric value)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path or default_store_path())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path)
            cols = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
            self.db.execute(f"CREATE TABLE IF NOT EXISTS results (id INTEGER PRIMARY KEY, {cols})")
            existing = {row[1] for row in self.db.execute("PRAGMA table_info(results)")}
            for name, kind in COLUMNS.items():
                if name not in existing:
                    self.db.execute(f"ALTER TABLE results ADD COLUMN {name} {kind}")
        except sqlite3.DatabaseError as err:
            raise StoreError(
                f"results store {self.path} is not a readable SQLite file ({err}); move it aside and run again."
            ) from None

    def add(self, records: Iterable[dict[str, Any]]) -> int:
        """Insert all records in one transaction: all or none."""
        rows = [tuple(r.get(c) for c in COLUMNS) for r in records]
        marks = ", ".join("?" for _ in COLUMNS)
        try:
            with self.db:
                self.db.executemany(f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({marks})", rows)
        except sqlite3.DatabaseError as err:
            raise StoreError(f"could not write to results store {self.path} ({err}).") from None
        return len(rows)

    def records(self, **filters: Any) -> list[dict[str, Any]]:
        where = [f"{k} = ?" for k, v in filters.items() if v is not None]
        args = [v for v in filters.values() if v is not None]
        sql = "SELECT * FROM results" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        try:
            cur = self.db.execute(sql, args)
        except sqlite3.DatabaseError as err:
            raise StoreError(
                f"results store {self.path} cannot be read ({err}); move it aside and run again."
            ) from None
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def close(self) -> None:
        self.db.close()
