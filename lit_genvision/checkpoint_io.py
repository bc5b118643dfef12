"""The one door through which every checkpoint is read and written.

Reading: a local path or an ``http(s)://`` URL, always ``torch.load(..., weights_only=True)``, so
a file never runs code; a URL is downloaded afresh into a private temporary file on every use
(never cached by file name, so a later URL with the same name cannot load a stale file). Every
failure is one sentence.

Writing: the checkpoint is serialised to a temporary file *beside* the target, flushed and
fsynced, then renamed over it (``os.replace``, atomic within one filesystem) and the folder is
fsynced. A kill at any moment leaves either the old checkpoint or the new one, whatever
filesystem ``$TMPDIR`` is on (a cross-filesystem rename would degrade to an in-place copy).

``SafeCheckpointIO`` is Lightning's ``CheckpointIO`` over these two functions; ``lit-genvision
fit/validate/test`` install it on every trainer.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import get_filesystem

URL_SCHEMES = ("http://", "https://")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for the requested command."""


def is_url(path: str | os.PathLike) -> bool:
    return str(path).startswith(URL_SCHEMES)


def download(url: str, timeout: float = 60.0) -> Path:
    """Download ``url`` into a new private temporary file and return its path (the caller removes it).

    Nothing is cached: two downloads of URLs that share a file name never see each other's bytes.
    """
    fd, tmp = tempfile.mkstemp(prefix="lit-genvision-", suffix=".ckpt")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, ValueError) as err:
        Path(tmp).unlink(missing_ok=True)
        reason = getattr(err, "reason", None) or err
        raise CheckpointError(
            f"could not download the checkpoint {url} ({reason}); check the URL and the network, or download it "
            "yourself and pass the local path."
        ) from None
    return Path(tmp)


def load_checkpoint_file(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` of a local file or a URL, one sentence per failure."""
    if is_url(path):
        local = download(str(path))
        try:
            return _load_local(local, map_location, shown=str(path))
        finally:
            local.unlink(missing_ok=True)
    return _load_local(Path(path), map_location, shown=str(path))


def _load_local(path: Path, map_location: Any, shown: str) -> Any:
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {shown}; pass a .ckpt written by `lit-genvision fit` "
            "(runs/<name>/version_N/checkpoints/last.ckpt)."
        )
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a cut or foreign file is not one
        raise CheckpointError(
            f"checkpoint {shown} is corrupt or truncated (not a torch zip archive); use another checkpoint, "
            "e.g. an earlier one from the same run."
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Weights only" in str(err):
            raise CheckpointError(
                f"checkpoint {shown} holds Python objects that cannot be loaded safely (weights_only=True) and was "
                "refused; use a checkpoint written by `lit-genvision fit`."
            ) from None
        raise CheckpointError(f"checkpoint {shown} is corrupt or truncated ({err}); use another checkpoint.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(
            f"checkpoint {shown} is corrupt or truncated ({reason}); use another checkpoint, "
            "e.g. an earlier one from the same run."
        ) from None


def sha256_of(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a local file, read in 1 MiB chunks (checkpoints, weights files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, rename it over ``path``
    and fsync the folder: a reader (or a crash) sees the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders; the rename is done either way
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` through ``atomic_write``."""
    atomic_write(path, lambda f: torch.save(obj, f))


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with the platform's rules: safe loading of local and remote
    files, and atomic saving beside the target for local paths (object stores keep Lightning's
    own transactional upload)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_save(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        if weights_only is False:
            raise CheckpointError("lit-genvision loads checkpoints with weights_only=True only.")
        if not is_url(path) and not _is_local(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        return load_checkpoint_file(path, map_location="cpu")


def _is_local(path: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return not is_url(path) and isinstance(get_filesystem(str(path)), LocalFileSystem)
