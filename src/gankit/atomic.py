"""Crash-safe file writing: temp file, fsync, rename; and checksums to verify what was read."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, BinaryIO, Callable

from gankit.errors import GankitError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def writable(path: str | Path, what: str) -> Path:
    """``path`` once its folder exists and takes files: checked before the work, not after it."""
    path = Path(path)
    if path.is_dir():
        raise GankitError(f"{what} {path} is a folder; give a file path inside it.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GankitError(f"Cannot create the folder of {what} {path} ({e.strerror}); choose a writable path.") from None
    if not os.access(path.parent, os.W_OK):
        raise GankitError(f"The folder of {what} {path} is not writable; choose another path.")
    return path


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_synced(path: Path, data: bytes) -> None:
    """Write and fsync ``path`` (no rename: for files inside a folder that is renamed later)."""
    try:
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise GankitError(  # checkpoints are written through here: the older ones are untouched
            f"Cannot write {path} ({e.strerror or e}); free disk space or make the folder writable, then try "
            "again (a run resumes from its previous checkpoint, which is intact)."
        ) from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    write_bytes_synced(tmp, data)
    try:
        os.replace(tmp, path)
    except OSError as e:
        raise GankitError(f"Cannot replace {path} ({e.strerror or e}); check the folder's permissions.") from None
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def atomic_write_encoded(path: Path, encode: Callable[[BinaryIO], None]) -> None:
    """Replace ``path`` with what ``encode`` writes to a file object (an image or figure encoder):
    encoded in memory first, so a failed encoding leaves no file and a reader never sees half one."""
    buffer = io.BytesIO()
    encode(buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def image_format(path: Path) -> str:
    """Pillow's name for the image format of ``path``'s suffix, PNG when it has none; ValueError
    for a suffix Pillow cannot write (encoders given a file object cannot guess it themselves)."""
    from PIL import Image

    if not path.suffix:
        return "PNG"
    name = Image.registered_extensions().get(path.suffix.lower())
    if name is None or name not in Image.SAVE:
        raise ValueError(f"unknown file extension: {path.suffix}")
    return name
