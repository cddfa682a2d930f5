"""MNIST sources: the embedded digits, IDX files and npz files the tests write, and their errors."""

import gzip

import numpy as np
import pytest
import torch

from gankit.config import DataConfig
from gankit.data import EpochBatches, load_dataset
from gankit.data.base import Attribute
from gankit.errors import GankitError


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), rng.integers(0, 10, 30).astype(np.uint8)


def test_embedded_mnist_is_5000_balanced_digits_in_range():
    data = load_dataset("mnist")
    assert data.samples.shape == (5000, 1, 28, 28) and data.samples.dtype == torch.float32
    assert data.samples.min() == -1.0 and data.samples.max() == 1.0
    assert data.labels.shape == (5000, 1) and data.labels.dtype == torch.int64
    assert torch.bincount(data.labels[:, 0]).tolist() == [500] * 10
    assert data.info.attributes[0].values == tuple("0123456789")


def test_digits_are_held_as_pixels_and_taken_as_the_same_floats():
    """A quarter of float32's memory, and no value changes: take() converts exactly as loading did."""
    data = load_dataset("mnist")
    assert data.stored.dtype == torch.uint8 and data.stored.shape == (5000, 1, 28, 28)
    some = torch.tensor([4999, 0, 17])  # in this order: the loop takes the labels of the same indices apart
    assert torch.equal(data.take(some), data.stored[some].float() / 127.5 - 1)
    assert torch.equal(data.take(some)[:, 0, 14, 14], data.samples[[4999, 0, 17], 0, 14, 14])
    assert torch.equal(data.take(slice(10, 12)), data.samples[10:12])
    moved = data.to(torch.device("cpu"))
    assert moved.stored.dtype == torch.uint8 and torch.equal(moved.take(some), data.take(some))


def test_npz_values_between_whole_pixels_are_kept_as_floats(tmp_path, digits):
    """Rescaled 0-1 floats need not land on whole 0-255 values; rounding them to pixels would change them."""
    images, labels = digits
    smooth = images[:10].astype(np.float32) / 255 * 0.999  # 0-1 floats, most not k/255
    np.savez(tmp_path / "smooth.npz", x_train=smooth, y_train=labels[:10])
    data = load_dataset(f"mnist:{tmp_path / 'smooth.npz'}")
    assert data.stored.dtype == torch.float32
    expected = torch.from_numpy(smooth).unsqueeze(1).double() * 255 / 127.5 - 1
    assert torch.allclose(data.samples.double(), expected, atol=1e-6)
    np.savez(tmp_path / "whole.npz", x_train=images[:10].astype(np.float64), y_train=labels[:10])
    whole = load_dataset(f"mnist:{tmp_path / 'whole.npz'}")
    assert whole.stored.dtype == torch.uint8 and torch.equal(whole.stored[:, 0], torch.from_numpy(images[:10]))


@pytest.mark.parametrize("name, gz, labels_gz", [
    ("train-images-idx3-ubyte", False, False), ("train-images-idx3-ubyte", True, True),
    ("train-images-idx3-ubyte", True, False), ("train-images-idx3-ubyte", False, True),
    ("train-images.idx3-ubyte", False, False),  # Kaggle's copy spells the names with a dot
])
def test_idx_files_load_with_the_values_written(tmp_path, digits, name, gz, labels_gz):
    """Either file may be gzipped: downloads often leave one of them compressed."""
    images, labels = digits
    suffix = ".gz" if gz else ""
    with (gzip.open if gz else open)(tmp_path / f"{name}{suffix}", "wb") as f:
        f.write(idx_bytes(images, 2051))
    labels_file = tmp_path / f"{name.replace('images', 'labels').replace('idx3', 'idx1')}{'.gz' if labels_gz else ''}"
    with (gzip.open if labels_gz else open)(labels_file, "wb") as f:
        f.write(idx_bytes(labels, 2049))
    for spec in (f"mnist:{tmp_path}", f"mnist:{tmp_path}/{name}{suffix}"):
        data = load_dataset(spec)
        expected = torch.from_numpy(images.astype(np.float32)) / 127.5 - 1
        assert torch.allclose(data.samples[:, 0], expected)
        assert data.labels[:, 0].tolist() == labels.tolist()


def test_keras_npz_loads(tmp_path, digits):
    images, labels = digits
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels, x_test=images[:3], y_test=labels[:3])
    data = load_dataset(f"mnist:{tmp_path / 'mnist.npz'}")
    assert len(data) == 30 and data.labels[:, 0].tolist() == labels.tolist()


def test_flat_784_npz_loads_as_28x28_digits(tmp_path, digits):
    images, labels = digits
    np.savez(tmp_path / "flat.npz", x_train=images[:4].reshape(4, 784), y_train=labels[:4])
    data = load_dataset(f"mnist:{tmp_path / 'flat.npz'}")
    assert data.samples.shape == (4, 1, 28, 28)
    assert torch.equal(data.stored[:, 0], torch.from_numpy(images[:4]))  # row-major: each row of 28 in place


def write_pair(tmp_path, images_bytes: bytes, labels_bytes: bytes):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(images_bytes)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(labels_bytes)


@pytest.mark.parametrize("case, words", [
    ("magic", "magic number"),
    ("truncated", "truncated or corrupt"),
    ("trailing", "has 54 bytes but its header promises 38"),
    ("label 10", "labels must be digits 0-9, found 0..10"),
    ("count", "labels for"),
    ("more labels", "6 labels for 5 images"),
    ("empty", "too short"),
])
def test_broken_idx_files_are_one_sentence_errors(tmp_path, digits, case, words):
    images, labels = digits
    good_images, good_labels = idx_bytes(images, 2051), idx_bytes(labels, 2049)
    broken = {
        "magic": (idx_bytes(images, 2049), good_labels),
        "truncated": (good_images[:-100], good_labels),
        "trailing": (good_images, good_labels + bytes(16)),
        "label 10": (good_images, idx_bytes(np.where(labels == labels.max(), 10, labels), 2049)),
        "count": (good_images, idx_bytes(labels[:10], 2049)),
        "more labels": (idx_bytes(images[:5], 2051), idx_bytes(labels[:6], 2049)),
        "empty": (b"", good_labels),
    }[case]
    write_pair(tmp_path, *broken)
    with pytest.raises(GankitError, match=words):
        load_dataset(f"mnist:{tmp_path}")


@pytest.mark.parametrize("arrays, words", [
    ({"a": np.zeros(3)}, "x_train and y_train"),
    ({"x_train": np.zeros((4, 32, 32)), "y_train": np.zeros(4)}, "expected \\(N, 28, 28\\)"),
    ({"x_train": np.zeros((4, 28, 28)), "y_train": np.full(4, 12)}, "digits 0-9"),
    ({"x_train": np.zeros((4, 28, 28)), "y_train": np.array([-1, 0, 1, 2])}, "labels must be digits 0-9, found -1..2"),
    ({"x_train": np.full((4, 28, 28), -0.5), "y_train": np.zeros(4)}, "pixel values outside 0-255"),  # [-1, 1]
    ({"x_train": np.full((4, 28, 28), 513, np.uint16), "y_train": np.zeros(4)}, "outside 0-255"),
    ({"x_train": np.full((4, 28, 28), np.nan), "y_train": np.zeros(4)}, "outside 0-255 \\(or NaN\\)"),
    ({"x_train": np.zeros((4, 28, 28)), "y_train": np.array(list("0123"))},
     "holds labels that are not whole numbers \\(<U1\\); store one digit 0-9 per image"),
    ({"x_train": np.zeros((4, 28, 28)), "y_train": np.full(4, 2.5)}, "not whole numbers \\(float64\\)"),
    ({"x_train": np.array([["x"] * 28] * 28 * 4).reshape(4, 28, 28), "y_train": np.zeros(4)},
     "holds <U1 images; store pixels as numbers 0-255 \\(or 0-1\\)"),
    ({"x_train": np.zeros((4, 28, 28)), "y_train": np.eye(4, 10)}, "labels of shape \\(4, 10\\) \\(one-hot\\?\\)"),
])
def test_bad_npz_files_are_errors(tmp_path, arrays, words):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(GankitError, match=words):
        load_dataset(f"mnist:{tmp_path / 'bad.npz'}")


def test_binarised_integer_digits_are_scaled_like_floats_in_0_1(tmp_path, digits):
    images, labels = digits
    binary = (images[:20] > 127).astype(np.uint8)
    np.savez(tmp_path / "binary.npz", x_train=binary, y_train=labels[:20])
    samples = load_dataset(f"mnist:{tmp_path / 'binary.npz'}").samples
    assert set(samples.unique().tolist()) == {-1.0, 1.0}
    np.savez(tmp_path / "bool.npz", x_train=binary.astype(bool), y_train=labels[:20])
    assert torch.equal(load_dataset(f"mnist:{tmp_path / 'bool.npz'}").samples, samples)


def test_corrupt_gzip_and_single_arrays_are_one_sentence_errors(tmp_path, digits):
    images, labels = digits
    write_pair(tmp_path, b"", idx_bytes(labels, 2049))
    (tmp_path / "train-images-idx3-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage-not-gzip" * 3)
    with pytest.raises(GankitError, match=r"train-images-idx3-ubyte.gz cannot be read \(.*\); download the file again"):
        load_dataset(f"mnist:{tmp_path}")
    np.save(tmp_path / "x.npy", images)
    with pytest.raises(GankitError, match="is a single numpy array; mnist: reads an npz holding x_train and y_train"):
        load_dataset(f"mnist:{tmp_path / 'x.npy'}")


def test_idx_files_are_gunzipped_by_their_content_not_their_name(tmp_path, digits):
    images, labels = digits
    write_pair(tmp_path, idx_bytes(images, 2051), gzip.compress(idx_bytes(labels, 2049)))  # gzip, named plain
    (tmp_path / "train-images-idx3-ubyte").rename(tmp_path / "train-images-idx3-ubyte.gz")  # plain, named .gz
    data = load_dataset(f"mnist:{tmp_path}")
    assert torch.equal(data.stored[:, 0], torch.from_numpy(images)) and data.labels[:, 0].tolist() == labels.tolist()


@pytest.mark.parametrize("settings, words", [
    ({"channels": 2}, "data.channels must be 1 \\(grayscale\\) or 3 \\(RGB\\), not 2"),
    ({"image_size": -3}, "data.image_size must be between 0 .* not -3"),
    ({"image_size": "32"}, "not '32'"),
])
def test_the_python_api_checks_data_settings_as_the_cli_does(settings, words):
    with pytest.raises(GankitError, match=words):
        load_dataset("faces:4", DataConfig("faces:4", **settings))


def test_missing_paths_and_unknown_datasets(tmp_path):
    with pytest.raises(GankitError, match="does not exist"):
        load_dataset(f"mnist:{tmp_path / 'nope.npz'}")
    with pytest.raises(GankitError, match="neither"):
        load_dataset(f"mnist:{tmp_path}")
    with pytest.raises(GankitError, match="Unknown dataset 'cifar'"):
        load_dataset("cifar")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(GankitError, match=r"not a readable npz file \(not numpy's array format\)"):
        load_dataset(f"mnist:{tmp_path / 'junk.npz'}")
    with pytest.raises(GankitError, match="1x28x28"):
        load_dataset("mnist", DataConfig("mnist", image_size=64))


def test_epoch_batches_cover_each_epoch_once_and_shard_across_ranks():
    batches = EpochBatches(100, 10, seed=3)
    first_epoch = torch.cat([batches.indices(b) for b in range(10)])
    assert sorted(first_epoch.tolist()) == list(range(100))
    assert not torch.equal(batches.indices(10), batches.indices(0))  # a new shuffle per epoch
    assert torch.equal(EpochBatches(100, 10, seed=3).indices(13), batches.indices(13))  # recomputable
    rank0, rank1 = EpochBatches(100, 10, 3, 0, 2), EpochBatches(100, 10, 3, 1, 2)
    both = torch.cat([rank0.indices(b) for b in range(5)] + [rank1.indices(b) for b in range(5)])
    assert sorted(both.tolist()) == list(range(100))
    with pytest.raises(GankitError, match="lower --batch-size to at most 10"):
        EpochBatches(10, 64, seed=0)
    with pytest.raises(GankitError, match="The data hold 1 sample, and a batch needs at least 2; train on a larger"):
        EpochBatches(1, 64, seed=0)
    with pytest.raises(GankitError, match=r"The data hold 3 samples \(1 for each of 2 processes\)"):
        EpochBatches(3, 2, seed=0, rank=0, world=2)
    with pytest.raises(GankitError, match="lower --batch-size to at most 15"):  # each rank's share, not all 30
        EpochBatches(30, 20, seed=0, rank=0, world=2)
    assert not torch.equal(EpochBatches(100, 10, seed=4).indices(0), batches.indices(0))  # train.seed orders
    uneven = EpochBatches(105, 10, seed=3)  # the last 5 of an epoch are dropped: every batch is whole
    assert uneven.per_epoch == 10 and all(len(uneven.indices(i)) == 10 for i in range(11))


def test_epoch_batches_live_on_the_training_device_in_the_cpu_order():
    # "meta" stands in for a GPU: the permutation moves there once per epoch, the same on every device.
    on_device = EpochBatches(100, 10, seed=3, device="meta")
    assert on_device.indices(12).device.type == "meta" and on_device.indices(12).shape == (10,)
    assert EpochBatches(100, 10, seed=3).indices(12).device.type == "cpu"


def test_an_attribute_value_is_a_name_or_a_label_below_its_count():
    hair = Attribute("hair", ("black", "blue", "red"))
    assert hair.index("red") == 2 and hair.index("2") == 2 and hair.index(0) == 0
    for bad in ("3", -1, "green"):
        with pytest.raises(GankitError, match="choose one of black, blue, red \\(or 0-2\\)"):
            hair.index(bad)
