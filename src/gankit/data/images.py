"""Image decoding, resizing and the uint8 image cache shared by the image datasets.

``decode_image`` turns any file Pillow can read into a square uint8 array (C, S, S): alpha
composited on white, 16-bit samples scaled (not clipped) to 8 bits, CMYK/palette/grayscale
converted to the requested RGB or grayscale, the shorter side resized to S with an
antialiasing filter and the centre cropped (for CelebA's 178x218 faces this is the usual
178x178 centre crop). A file that cannot be used raises ``SkippedImage`` with the reason it is
counted under; images above Pillow's pixel limit (``PIL.Image.MAX_IMAGE_PIXELS``) are such
decompression bombs and are skipped before their pixels are decoded.

``cached_images`` runs a producer (a decoder or a renderer) once per item and stores the
results in a cache folder: ``pixels.u8`` (raw uint8, shape in ``meta.json``), ``kept.npy``
(which items produced an image) and the skip counts; no pickle. The folder is named by a hash
of everything the pixels depend on (for files: path, size and mtime of every file, plus size,
channels and the decoder version), so a changed file or setting builds a new entry and a
second load only reads. It lives under ``$GANKIT_CACHE`` or ``~/.cache/gankit/images``.

Decoding is serial: on two cores a thread pool measured 5% faster (about 1.2 ms per
178x218 JPEG at 64 px either way), too little for a second code path.

The datasets here all fit in memory, so ``StoredImages.to_tensor`` makes one float tensor.
``StoredImages.pixels`` is a read-only ``np.memmap``; a dataset larger than memory would keep
it instead and convert each batch: ``torch.from_numpy(pixels[idx]).float() / 127.5 - 1``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import struct
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from PIL import ExifTags, Image
from tqdm import tqdm

from gankit.cache import cache_dir
from gankit.errors import GankitError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                              ".ppm", ".pgm", ".pbm", ".pnm", ".tga"})
# Part of every cache key: bump it when decoding changes (2: float samples scaled; 3: the centre
# square cut at fractional coordinates, before the EXIF turn).
DECODER_VERSION = 3
WHITE = (255, 255, 255, 255)
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
# What Pillow's format plugins raise on corrupt or truncated data, besides OSError.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError,
                 ZeroDivisionError, Image.DecompressionBombError)
PROGRESS_FROM = 5000  # show a progress bar when building a cache of at least this many items


class SkippedImage(Exception):
    """An item that yields no image; ``reason`` is the count it goes into."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- decoding ------------------------------------------------------------------------------------
@contextlib.contextmanager
def opened_image(path: Path) -> Iterator[Image.Image]:
    """``path`` opened by Pillow for the duration; what goes wrong there, opening or decoding,
    raises SkippedImage with the reason it is counted under."""
    if path.exists() and not path.is_file():  # a named pipe or a device: reading it would block or never end
        raise SkippedImage("not a regular file")
    with warnings.catch_warnings():
        # Pillow only warns between its pixel limit and twice that; treat both as a bomb.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as im:
                yield im
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise SkippedImage("above the pixel limit") from None
        except DECODE_ERRORS:
            raise SkippedImage("unreadable") from None


def decode_image(path: Path, size: int, channels: int) -> np.ndarray:
    """Decode ``path`` into uint8 (channels, size, size), or raise SkippedImage."""
    with opened_image(path) as im:
        extent = decoded_extent(im, size, channels)
        # The centre square of the stored picture is that of the upright one, turned: cut it
        # first, where the extent a JPEG draft covers is measured (from the top-left corner).
        square = centre_square(to_mode(im, channels), size, extent)
        turn = EXIF_TURNS.get(im.getexif().get(ExifTags.Base.Orientation, 1))
    square = square.transpose(turn) if turn is not None else square
    return np.asarray(square).reshape(size, size, channels).transpose(2, 0, 1)


# EXIF orientation -> the turn that stands the picture upright (as ImageOps.exif_transpose turns it).
EXIF_TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def to_mode(im: Image.Image, channels: int) -> Image.Image:
    """Any Pillow mode -> 'L' or 'RGB': alpha composited on white, 16-bit samples scaled,
    floating-point samples read as 0-1 when none exceeds 1 (else as 0-255)."""
    if im.mode in SIXTEEN_BIT_MODES:
        # Pillow's own conversion clips 16-bit values at 255; scale the range instead.
        sixteen = np.asarray(im, dtype=np.float32)
        im = Image.fromarray(np.clip(np.rint(sixteen / 257.0), 0, 255).astype(np.uint8))
    elif im.mode == "F":  # a float TIFF; Pillow's conversion would clip 0-1 values to black
        values = np.asarray(im, dtype=np.float32)
        if not np.isfinite(values).all():
            raise ValueError("non-finite samples")  # counted as unreadable
        scale = 255.0 if values.size and values.max() <= 1 else 1.0
        im = Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8))
    if im.mode in ALPHA_MODES or "transparency" in im.info:
        im = Image.alpha_composite(Image.new("RGBA", im.size, WHITE), im.convert("RGBA"))
    return im.convert("L" if channels == 1 else "RGB")


def decoded_extent(im: Image.Image, size: int, channels: int) -> tuple[float, float]:
    """Ask a JPEG decoder to scale down by 1/2..1/8 while keeping 2x size pixels: less work,
    and the 2x margin leaves the antialiasing to the resize filter (as Pillow's thumbnail does).

    Returns the width and height the picture covers: a JPEG scaled down covers a fraction of
    its last column and row, which the crop must leave out.
    """
    drafted = im.draft("L" if channels == 1 else "RGB", (2 * size, 2 * size))
    return drafted[1][2:] if drafted else im.size


def centre_square(im: Image.Image, size: int, extent: tuple[float, float]) -> Image.Image:
    """The centre square of the picture (side = its shorter side) resized to size x size, antialiased.

    The square's corners may fall inside pixels (a JPEG draft covers a fraction of its last
    column and row; an odd difference of sides halves a pixel): the resize takes them as they are.
    Cutting the whole pixels around it first keeps the filter from reaching into the borders left out.
    """
    width, height = extent
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    x0, y0 = math.floor(left), math.floor(top)
    cut = im.crop((x0, y0, math.ceil(left + side), math.ceil(top + side)))
    box = (left - x0, top - y0, left - x0 + side, top - y0 + side)
    return cut.resize((size, size), Image.Resampling.LANCZOS, box=box)


def image_files(root: Path) -> list[Path]:
    """Image files under ``root``, recursively and sorted, following each directory once.

    Symlinked directories are followed, but a directory already visited (a symlink loop, or a
    second link to the same folder) is not entered again.
    """
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in seen:
            dirs.clear()
            continue
        seen.add((stat.st_dev, stat.st_ino))
        dirs.sort()
        found.extend(Path(folder, f) for f in sorted(files) if Path(f).suffix.lower() in IMAGE_EXTENSIONS)
    return found


# --- the cache ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredImages:
    """Produced images as uint8 (K, C, H, W) and which of the N items they came from."""

    pixels: np.ndarray  # a read-only memmap of the cache file
    kept: np.ndarray  # int64 (K,): the item index of each image
    skipped: dict[str, int]  # reason -> number of items that yielded no image

    def to_tensor(self) -> torch.Tensor:
        """All images as one uint8 tensor, copied out of the cache file (``TensorData`` stores
        pixels and converts them a batch at a time)."""
        return torch.from_numpy(np.array(self.pixels))


def cache_key(**parts: object) -> str:
    """A stable name for everything the cached pixels depend on (JSON-serialisable parts)."""
    text = json.dumps({"decoder": DECODER_VERSION, **parts}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def files_fingerprint(paths: Iterable[Path]) -> list[list]:
    """[path, size, mtime, ctime, inode] per file, so that an edited, added or removed file changes the
    key. A file replaced under its old mtime (cp -p, rsync -t and unzip keep the source's) still gets
    a new ctime, which no program can set back, or a new inode."""
    rows = []
    for path in paths:
        try:
            stat = path.stat()
            rows.append([str(path.absolute()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino])
        except OSError:  # a dangling link or a link loop: it will be skipped as unreadable
            rows.append([str(path.absolute()), None, None, None, None])
    return rows


def cached_images(key: str, count: int, shape: tuple[int, int, int],
                  produce: Callable[[int], np.ndarray]) -> StoredImages:
    """The images ``produce(0..count-1)`` returns (uint8 of ``shape``), built once then read.

    ``produce`` raises SkippedImage for an item without an image; those are counted.
    """
    folder = cache_dir("images") / key
    stored = read_cache(folder, shape)
    if stored is None:
        build_cache(folder, count, shape, produce)
        stored = read_cache(folder, shape)
        if stored is None:  # only if something else deletes or corrupts it meanwhile
            raise GankitError(f"The image cache {folder} could not be read back; delete it and load again.")
    return stored


def decode_files(paths: list[Path], size: int, channels: int) -> StoredImages:
    """Decoded (cached) images of ``paths``; ``kept`` indexes into ``paths``."""
    key = cache_key(files=files_fingerprint(paths), size=size, channels=channels)
    return cached_images(key, len(paths), (channels, size, size),
                         lambda i: decode_image(paths[i], size, channels))


def read_cache(folder: Path, shape: tuple[int, int, int]) -> StoredImages | None:
    """The cache entry in ``folder``, or None when absent or incomplete."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        kept = np.load(folder / "kept.npy", allow_pickle=False)
        full_shape = (len(kept), *shape)
        if tuple(meta["shape"]) != full_shape:
            return None
        pixels_path = folder / "pixels.u8"
        if pixels_path.stat().st_size != int(np.prod(full_shape)):
            return None
        # np.memmap cannot map an empty file; an entry with no image holds none to map.
        pixels = (np.memmap(pixels_path, np.uint8, "r", shape=full_shape) if len(kept)
                  else np.zeros(full_shape, np.uint8))
        return StoredImages(pixels, kept.astype(np.int64), dict(meta["skipped"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build_cache(folder: Path, count: int, shape: tuple[int, int, int],
                produce: Callable[[int], np.ndarray]) -> None:
    """Produce every item into a temporary folder, then rename it to ``folder`` in one step."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
    except OSError as e:
        raise GankitError(f"Cannot create the image cache in {folder.parent} ({e.strerror or e}); "
                          "set GANKIT_CACHE to a writable folder.") from None
    try:
        kept, skipped = write_pixels(tmp / "pixels.u8", count, shape, produce)
        np.save(tmp / "kept.npy", np.asarray(kept, dtype=np.int64))
        meta = {"shape": [len(kept), *shape], "skipped": skipped}
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.rename(tmp, folder)  # refused where the entry exists with files in it: never over another's
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            if read_cache(folder, shape) is not None:  # built meanwhile by another process (two ranks of one machine)
                return
            shutil.rmtree(folder, ignore_errors=True)  # an incomplete entry left by a crash
            os.rename(tmp, folder)
    except OSError as e:
        if read_cache(folder, shape) is not None:  # another process built the same entry first
            return
        raise GankitError(f"Cannot write the image cache in {folder.parent} ({e.strerror or e}); "
                          "free disk space or set GANKIT_CACHE to another folder.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_pixels(path: Path, count: int, shape: tuple[int, int, int],
                 produce: Callable[[int], np.ndarray]) -> tuple[list[int], dict[str, int]]:
    """Append each produced image to ``path`` (never all in memory): kept indices, skip counts."""
    kept: list[int] = []
    skipped: Counter[str] = Counter()
    with open(path, "wb") as f:
        # disable=None: no bar where stderr is not a terminal (a log file would fill with redrawn bars)
        bar_off = True if count < PROGRESS_FROM else None
        for i in tqdm(range(count), desc="caching images", unit="img", disable=bar_off):
            try:
                image = produce(i)
            except SkippedImage as e:
                skipped[e.reason] += 1
                continue
            if image.shape != shape or image.dtype != np.uint8:
                raise ValueError(f"item {i} produced {image.dtype} {image.shape}, not uint8 {shape}")
            f.write(np.ascontiguousarray(image).tobytes())
            kept.append(i)
    return kept, dict(skipped)
