"""Crash-safe file writing: temp file, fsync, rename; and checksums to verify what was read."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any, BinaryIO, Callable

from gankit.errors import GankitError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


RUN_FILES = ("generator.json", "generator.safetensors", "config.json", "metrics.jsonl")  # what train keeps in a run


def is_run(folder: Path) -> bool:
    """Whether ``folder`` is what `gankit train` leaves, not just any folder with a config.json."""
    return (folder / "generator.json").is_file() or all((folder / name).is_file()
                                                        for name in ("config.json", "metrics.jsonl"))


def checkpoints_owner(folder: Path) -> Path | None:
    """The run whose checkpoints folder is ``folder`` or holds it at any depth, or None: what is
    there belongs to that run, whose pruning deletes old step folders."""
    return next((f.parent for f in (folder, *folder.parents) if f.name == "checkpoints" and is_run(f.parent)), None)


def run_owning(path: Path) -> Path | None:
    """The run folder of which ``path`` is one of the files training keeps, or None."""
    if path.name in RUN_FILES and is_run(path.parent):
        return path.parent
    return checkpoints_owner(path.parent)


def writable(path: str | Path, what: str) -> Path:
    """``path`` once its folder exists and takes files: checked before the work, not after it.
    It must not be one of a run's own files, which an output would destroy."""
    path = Path(path)
    if path.is_dir():
        raise GankitError(f"{what} {path} is a folder; give a file path inside it.")
    if path.exists() and not path.is_file():  # /dev/null, a pipe: the rename into place would replace it
        raise GankitError(f"{what} {path} is not a regular file (a device, pipe or socket), which writing would "
                          "replace; give the path of a file.")
    run = run_owning(path.absolute())
    if run is not None:
        raise GankitError(f"{what} {path} would overwrite a file that the run in {run} needs; choose another path.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GankitError(f"Cannot create the folder of {what} {path} ({e.strerror}); choose a writable "
                          "path.") from None
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


def _write_and_sync(path: Path, write: Callable[[BinaryIO], object]) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def write_bytes_synced(path: Path, data: bytes) -> None:
    """Write and fsync ``path`` (no rename: for files inside a folder that is renamed later)."""
    try:
        _write_and_sync(path, lambda f: f.write(data))
    except OSError as e:
        raise GankitError(  # checkpoints are written through here: the older ones are untouched
            f"Cannot write {path} ({e.strerror or e}); free disk space or make the folder writable, then resume "
            "the run (its earlier checkpoints, if it has any, are intact)."
        ) from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new one, never half."""
    _atomic_write(path, lambda f: f.write(data))


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` with what ``write`` puts in a file object, through a temp file beside it
    that is removed when anything fails; the file system's errors become one sentence."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        _write_and_sync(tmp, write)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):  # a read-only file system refuses even to remove what is not there
            tmp.unlink(missing_ok=True)
        if not isinstance(e, OSError) or e.errno is None:  # an encoder's refusal (Pillow raises OSError too)
            raise
        reason = "it is a folder" if path.is_dir() else e.strerror or str(e)
        fix = "free disk space or choose" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "choose"
        raise GankitError(f"Cannot write {path} ({reason}); {fix} a writable path.") from None
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def atomic_write_encoded(path: Path, encode: Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` with what ``encode`` writes to a file object (an image, figure or npz
    encoder), streamed into the temp file rather than held in memory twice: a failed encoding
    leaves no file, and a reader never sees half one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # e.g. a file where the folder should be
        raise GankitError(f"Cannot create the folder {path.parent} ({e.strerror}); move away what is in its "
                          "place.") from None
    _atomic_write(path, encode)


def writable_image(path: str | Path, what: str) -> Path:
    """``writable`` for an image: also a format gankit can encode, so that neither is found out
    only after the work that makes the image."""
    path = writable(path, what)
    image_format(path)
    return path


# The image files gankit writes: formats that take an RGB or grayscale picture as it is. Pillow
# registers more, but some refuse RGB (.xbm, .msp), need a plugin (.h5, .grib) or resize the
# picture (.ico, .icns), and each would be found out only after the sampling.
IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                  ".tiff": "TIFF", ".gif": "GIF", ".ppm": "PPM", ".tga": "TGA"}


def image_format(path: Path) -> str:
    """Pillow's name for the image format of ``path``'s suffix, PNG when it has none (encoders
    given a file object cannot guess it themselves)."""
    if not path.suffix:
        return "PNG"
    name = IMAGE_SUFFIXES.get(path.suffix.lower())
    if name is None:
        raise GankitError(f"{path} ends in {path.suffix}, which is not an image format gankit can write; "
                          f"end it in {', '.join(IMAGE_SUFFIXES)}.")
    return name
