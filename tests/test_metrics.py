"""Tests of the evaluation package: the formulas against independent computations, the digits
extractor on real digits, the reference cache and the Inception loading path."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from torchvision.transforms.functional import gaussian_blur

from gankit.artifacts import save_generator
from gankit.data import TensorData, load_dataset
from gankit.data.base import Attribute
from gankit.errors import GankitError
from gankit.metrics import evaluate, format_table, load_extractor, quick_scores, reference, run_eval, scores
from gankit.metrics.digits import WEIGHTS, load_digits
from gankit.metrics.evaluate import labels_as_in
from gankit.metrics.inception import FILE_NAMES
from gankit.models import get_family
from gankit.pipeline import GeneratorPipeline


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def private_cache(module_cache, tmp_path, monkeypatch):
    """No test writes to the user's cache or finds Inception weights installed there; the
    module's tests share one cache so that the real digits' statistics are computed once."""
    monkeypatch.setenv("GANKIT_CACHE", str(module_cache))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GANKIT_INCEPTION_WEIGHTS", raising=False)


@pytest.fixture(scope="module")
def mnist() -> TensorData:
    return load_dataset("mnist")


@pytest.fixture(scope="module")
def digits():
    return load_extractor("digits")


@pytest.fixture(scope="module")
def mnist_outputs(mnist, digits):
    """Features and logits of the 5,000 real digits, computed once for the module."""
    return digits.features_and_logits(mnist.samples)


def random_spd(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


# --- FID -------------------------------------------------------------------------------------
def test_frechet_distance_matches_closed_form_for_commuting_covariances():
    rng = np.random.default_rng(0)
    rotation = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    a, b = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    cov1, cov2 = rotation @ np.diag(a) @ rotation.T, rotation @ np.diag(b) @ rotation.T
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert scores.frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-10)
    assert scores.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)


@pytest.mark.parametrize("rank", [None, 3])  # full rank, and singular as with few samples
def test_frechet_distance_matches_eigenvalues_of_the_covariance_product(rank):
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    cov1, cov2 = random_spd(rng, 8, rank), random_spd(rng, 8)
    # Tr sqrt(C1 C2) from the (real, non-negative) eigenvalues of the non-symmetric product,
    # and from scipy's general matrix square root.
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvals(cov1 @ cov2).real, 0, None)).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt
    assert scores.frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-6)
    if rank is None:
        sqrtm_trace = np.trace(scipy.linalg.sqrtm(cov1 @ cov2)).real
        assert trace_sqrt == pytest.approx(sqrtm_trace, rel=1e-8)


def test_fid_of_gaussian_samples_approaches_the_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = np.zeros(4), np.full(4, 0.5)
    cov1, cov2 = random_spd(rng, 4), random_spd(rng, 4)
    x = rng.multivariate_normal(mu1, cov1, size=40_000)
    y = rng.multivariate_normal(mu2, cov2, size=40_000)
    exact = scores.frechet_distance(mu1, cov1, mu2, cov2)
    assert scores.fid(x, y) == pytest.approx(exact, rel=0.03)
    assert scores.fid(x, x) == pytest.approx(0, abs=1e-9) and scores.fid(x, x) >= 0  # rounding never goes below


# --- KID, IS, precision/recall, accuracy -----------------------------------------------------
def test_kid_equals_a_brute_force_unbiased_mmd():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 3)), rng.normal(0.7, 1.3, size=(12, 3))

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    mean, std = scores.kid(x, y, subsets=1, subset_size=m)  # one subset holding all: every order is the same
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-5)
    assert std == 0


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(4)
    same = scores.kid(rng.normal(size=(600, 8)), rng.normal(size=(600, 8)), subsets=20, subset_size=300)
    apart = scores.kid(rng.normal(size=(600, 8)), rng.normal(0.5, 1, size=(600, 8)), subsets=20, subset_size=300)
    assert abs(same[0]) < 3 * same[1] + 1e-3
    assert apart[0] > 10 * abs(same[0]) and apart[0] > 5 * apart[1]


def test_inception_score_of_known_predictions():
    confident = torch.nn.functional.one_hot(torch.arange(1000) % 10, 10).float() * 50
    assert scores.inception_score(confident, shuffle_seed=None)[0] == pytest.approx(10, rel=1e-3)
    by_class = confident[(torch.arange(1000) % 10).argsort(stable=True)]  # each tenth one class
    assert scores.inception_score(by_class, shuffle_seed=None)[0] == pytest.approx(1, rel=1e-3)
    assert scores.inception_score(by_class)[0] > 9.5  # shuffled first, as torch-fidelity does
    assert scores.inception_score(torch.zeros(1000, 10)) == pytest.approx((1.0, 0.0))


def test_default_feature_space_follows_the_data():
    from gankit.data.base import DataInfo
    from gankit.metrics import default_extractor
    from gankit.metrics.attributes import load_faces  # noqa: F401  (registers "faces")

    assert default_extractor(DataInfo((1, 28, 28)), "mnist") == "digits"
    assert default_extractor(DataInfo((3, 32, 32)), "faces:500") == "faces"
    assert default_extractor(DataInfo((1, 32, 32)), "faces:500") == "inception"  # grayscale: not the RGB classifier
    assert default_extractor(DataInfo((3, 64, 64)), "folder:x") == "inception"
    assert default_extractor(DataInfo((1, 28, 28)), " mnist:/data/digits.npz") == "digits"
    # 28x28 grayscale that are not digits: the digits classifier would put them all in one class
    assert default_extractor(DataInfo((1, 28, 28)), "folder:/data/letters") == "inception"
    assert default_extractor(DataInfo((1, 28, 28)), "faces:500") == "inception"


def test_scoring_against_a_handful_of_real_samples_is_one_sentence():
    from gankit.data.base import DataInfo, TensorData
    from gankit.metrics.evaluate import check_inputs
    from gankit.metrics.features import FeatureExtractor

    info = DataInfo((3, 8, 8))
    stub = FeatureExtractor("stub", torch.nn.Linear(1, 1), "0" * 16)
    with pytest.raises(GankitError, match="folder:few holds 3 real samples; scoring needs at least 10"):
        check_inputs(info, TensorData(torch.zeros(3, 3, 8, 8), None, info, "folder:few"), stub, 100)
    check_inputs(info, TensorData(torch.zeros(10, 3, 8, 8), None, info, "folder:enough"), stub, 100)


def test_classifier_scores_of_a_network_whose_classes_are_no_attribute():
    """Inception's 1,008 ImageNet logits: an IS and no per-attribute scores (this used to crash
    every Inception evaluation, trying to split the logits by the data's attributes)."""
    from gankit.data.base import DataInfo
    from gankit.metrics.evaluate import classifier_scores
    from gankit.metrics.features import FeatureExtractor

    imagenet_like = FeatureExtractor("stub", torch.nn.Linear(1, 1), "0" * 16)
    logits = torch.randn(200, 1008, generator=torch.Generator().manual_seed(0)) * 5
    result = classifier_scores(logits, None, DataInfo((3, 32, 32)), imagenet_like)
    assert set(result) == {"is_mean", "is_std"} and result["is_mean"] > 1


@pytest.mark.parametrize("n", [1000, 1001, 91])  # also where n is no multiple of the splits
def test_inception_score_matches_torch_fidelity(n):
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc")
    logits = torch.randn(n, 20) * 3
    for theirs, ours in ((metric_isc.isc_features_to_metric(logits, splits=10), scores.inception_score(logits)),
                         (metric_isc.isc_features_to_metric(logits, splits=10, shuffle=False),
                          scores.inception_score(logits, shuffle_seed=None))):
        assert ours == pytest.approx((theirs["inception_score_mean"], theirs["inception_score_std"]), rel=1e-9)


def test_precision_recall_on_point_clouds_with_known_answers():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(200, 2))
    assert scores.precision_recall(real, real.copy()) == (1.0, 1.0)
    assert scores.precision_recall(real, real + 100) == (0.0, 0.0)
    # Half of the fakes copy real points and half lie far away: precision is exactly 1/2, and
    # recall counts real points only, so the far half does not lower it below the copied share.
    # Reals at 0, 1, ..., 19: the 3rd nearest neighbour is 2 away inside and 3 away at the ends.
    line = np.arange(20.0)[:, None]
    fakes = np.array([[-2.5], [10.5], [21.5], [50.0]])  # inside the end balls, inside, inside, outside
    assert scores.precision_recall(line, fakes) == (0.75, 1.0)  # 4 fakes: each ball holds the rest
    half = np.concatenate([real[:100], real[100:] + 100])
    precision, recall = scores.precision_recall(real, half, chunk=64)
    assert precision == 0.5
    assert 0.5 <= recall < 1


def test_kid_of_sets_of_unequal_size_draws_subsets_of_the_smaller_size():
    """eval --n 500 against 5,000 reals: each subset takes as many reals as there are fakes."""
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(300, 3)), rng.normal(0.5, 1, size=(40, 3))
    g = torch.Generator().manual_seed(0)
    rows_x, rows_y = torch.randperm(300, generator=g)[:40], torch.randperm(40, generator=g)
    expected = scores.polynomial_mmd2(torch.as_tensor(x, dtype=torch.float32)[rows_x],
                                      torch.as_tensor(y, dtype=torch.float32)[rows_y])
    assert scores.kid(x, y, subsets=1, subset_size=1000, seed=0) == (pytest.approx(expected), 0.0)


def test_kid_averages_subsets_drawn_afresh_from_both_sets():
    """The fakes are drawn anew for each subset, as the reals are: y's second half is far from x, so
    subsets that always took y's first rows would score near 0."""
    rng = np.random.default_rng(7)
    x = torch.as_tensor(rng.normal(size=(100, 4)), dtype=torch.float32)
    y = torch.as_tensor(np.concatenate([rng.normal(size=(50, 4)), rng.normal(3, 1, size=(50, 4))]),
                        dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    values = [scores.polynomial_mmd2(x[torch.randperm(100, generator=g)[:50]], y[torch.randperm(100, generator=g)[:50]])
              for _ in range(20)]
    mean, std = scores.kid(x, y, subsets=20, subset_size=50, seed=1)
    assert mean == pytest.approx(np.mean(values), rel=1e-6) and std == pytest.approx(np.std(values), rel=1e-6)
    assert std > 0 and mean > 10 * scores.polynomial_mmd2(x[:50], y[:50])


def test_precision_recall_do_not_depend_on_the_chunk_the_distances_are_cut_in():
    rng = np.random.default_rng(8)
    real, fake = rng.normal(size=(60, 3)), rng.normal(0.3, 1.2, size=(60, 3))
    whole = scores.precision_recall(real, fake, chunk=10_000)
    assert scores.precision_recall(real, fake, chunk=7) == whole and 0 < whole[0] < 1 and 0 < whole[1] < 1


def test_a_fake_on_a_duplicated_real_point_is_inside_its_ball():
    """A ball's radius is the distance to the k-th neighbour, and its edge counts as inside: with the
    real point repeated, the radius is 0 and a fake on that very point is still inside."""
    real = np.concatenate([np.zeros((10, 2)), np.random.default_rng(9).normal(5, 1, size=(10, 2))])
    assert scores.precision_recall(real, np.zeros((5, 2)))[0] == 1.0


def test_the_score_functions_refuse_sets_too_small_for_them():
    with pytest.raises(ValueError):
        scores.mean_and_covariance(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="more than k=3"):
        scores.precision_recall(np.zeros((3, 2)), np.ones((10, 2)), k=3)


def test_conditional_accuracy_counts_per_requested_class():
    acc = scores.conditional_accuracy(requested=[0, 0, 1, 1, 1, 2], predicted=[0, 1, 1, 1, 0, 2], num_classes=4)
    assert acc.overall == pytest.approx(4 / 6)
    np.testing.assert_allclose(acc.per_class[:3], [0.5, 2 / 3, 1.0])
    assert np.isnan(acc.per_class[3])  # never requested
    assert acc.histogram.tolist() == [2, 3, 1, 0]


# --- the digits extractor ----------------------------------------------------------------------
def test_shipped_digits_weights_verify_and_record_their_accuracy(digits, mnist_outputs):
    meta = json.loads(WEIGHTS.with_suffix(".json").read_text())
    assert meta["held_out_accuracy"] >= 0.97
    features, logits = mnist_outputs
    assert features.shape == (5000, 128) and logits.shape == (5000, 10)
    assert digits.fingerprint == meta["sha256"][:16]


def test_tampered_digits_weights_are_refused(tmp_path):
    copy = tmp_path / "digits.safetensors"
    raw = bytearray(WEIGHTS.read_bytes())
    raw[-1] ^= 1
    copy.write_bytes(bytes(raw))
    shutil.copy(WEIGHTS.with_suffix(".json"), tmp_path / "digits.json")
    with pytest.raises(GankitError, match="sha256"):
        load_digits(copy)
    (tmp_path / "digits.json").unlink()
    with pytest.raises(GankitError, match="missing"):
        load_digits(copy)


def test_digits_extractor_refuses_other_shapes(digits):
    with pytest.raises(GankitError, match="1x28x28"):
        digits.features(torch.zeros(2, 3, 32, 32))


def test_fid_orders_real_then_blurred_then_noise(mnist, mnist_outputs, digits):
    features = mnist_outputs[0]
    order = torch.randperm(len(mnist), generator=torch.Generator().manual_seed(0))
    a, b = order[:2500], order[2500:3500]  # the embedded digits are sorted by class: split at random
    blurred = digits.features(gaussian_blur(mnist.samples[b], kernel_size=5, sigma=1.5))
    noise = digits.features(torch.rand(1000, 1, 28, 28) * 2 - 1)
    real_real, real_blur, real_noise = (scores.fid(features[a], f) for f in (features[b], blurred, noise))
    assert 10 * real_real < real_blur and 3 * real_blur < real_noise


class RealPipeline:
    """Stands in for a generator that returns real digits with the labels it is given."""

    def __init__(self, data: TensorData, labels: torch.Tensor):
        self.info, self.data, self.labels = data.info, data, labels

    def generate(self, n: int, labels=None, seed: int | None = None):
        return self.data.samples[:n], self.labels[:n]


def test_evaluating_real_digits_gives_the_classifier_accuracy(mnist, mnist_outputs, digits):
    accuracy = float((mnist_outputs[1].argmax(1) == mnist.labels[:, 0]).float().mean())
    result = evaluate(RealPipeline(mnist, mnist.labels), mnist, digits, n=len(mnist))
    assert result["accuracy"] == pytest.approx(accuracy) and accuracy >= 0.97
    assert result["fid"] < 1e-6 and result["precision"] == result["recall"] == 1.0
    assert result["is_mean"] > 8  # ten classes in every split: the digits are stored sorted by class
    assert sum(result["class_histogram"].values()) == len(mnist)
    assert min(result["accuracy_per_class"].values()) > 0.9


def test_a_generator_of_nan_is_one_sentence_not_an_eigensolver_failure(mnist, digits):
    broken = mnist.samples[:100].clone()
    broken[7] = float("nan")
    with pytest.raises(GankitError, match="produced NaN or infinite values, so its samples cannot be scored"):
        evaluate(RealPipeline(TensorData(broken, mnist.labels[:100], mnist.info, "mnist"), mnist.labels), mnist,
                 digits, n=100)


def test_shuffled_labels_give_chance_accuracy(mnist, mnist_outputs):
    shuffled = mnist.labels[torch.randperm(len(mnist), generator=torch.Generator().manual_seed(0)), 0]
    acc = scores.conditional_accuracy(shuffled, mnist_outputs[1].argmax(1), num_classes=10)
    assert acc.overall == pytest.approx(0.1, abs=0.02)
    assert acc.histogram.sum() == len(mnist)


# --- the reference cache -------------------------------------------------------------------
def test_reference_statistics_are_computed_once_per_dataset(mnist, digits, monkeypatch, tmp_path):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    calls = []
    compute = reference.compute_reference
    monkeypatch.setattr(reference, "compute_reference", lambda *a: calls.append(a) or compute(*a))
    first = reference.reference_stats(mnist, digits)
    second = reference.reference_stats(mnist, digits)
    assert len(calls) == 1
    assert list((tmp_path / "cache" / "reference").glob("*.safetensors"))  # under $GANKIT_CACHE
    np.testing.assert_array_equal(first.cov, second.cov)
    assert torch.equal(first.features, second.features) and second.count == len(mnist)
    fewer = TensorData(mnist.samples[:1000], mnist.labels[:1000], mnist.info, "mnist")
    reference.reference_stats(fewer, digits)  # other samples under the same spec: a new entry
    assert len(calls) == 2
    retrained = type(digits)("digits", digits.network, "f" * 16, attributes=digits.attributes)
    assert reference.reference_key(mnist, retrained) != reference.reference_key(mnist, digits)  # other weights
    changed = mnist.samples.clone()
    changed[1, 0, 14, 14] = -changed[1, 0, 14, 14]  # one pixel of one sample (a replaced image, say)
    reference.reference_stats(TensorData(changed, mnist.labels, mnist.info, "mnist"), digits)
    assert len(calls) == 3


def test_an_unwritable_cache_is_one_sentence(mnist, digits, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GANKIT_CACHE", str(blocker / "cache"))
    small = TensorData(mnist.samples[:100], mnist.labels[:100], mnist.info, "mnist")
    with pytest.raises(GankitError, match="set GANKIT_CACHE to a writable folder"):
        reference.reference_stats(small, digits)


def test_damaged_cache_file_is_recomputed(mnist, digits, tmp_path):
    small = TensorData(mnist.samples[:300], mnist.labels[:300], mnist.info, "mnist")
    stats = reference.reference_stats(small, digits, cache=tmp_path)
    path = tmp_path / f"{reference.reference_key(small, digits)}.safetensors"
    path.write_bytes(b"not safetensors")
    again = reference.reference_stats(small, digits, cache=tmp_path)
    np.testing.assert_allclose(again.mean, stats.mean)
    assert reference.read_reference(path) is not None


# --- generators ------------------------------------------------------------------------------
def untrained(family: str, info):
    torch.manual_seed(0)
    model = get_family(family)(get_family(family).Config(), info)
    return model.generator


def test_run_eval_scores_a_saved_conditional_generator(mnist, tmp_path):
    generator = untrained("cgan", mnist.info)
    cfg = get_family("cgan").Config()
    (tmp_path / "run").mkdir()
    save_generator(tmp_path / "run", "cgan", cfg, mnist.info, generator, step=0, data_spec="mnist")
    result = run_eval(tmp_path / "run", n=500, json_path=tmp_path / "out" / "eval.json", device="cpu")
    assert json.loads((tmp_path / "out" / "eval.json").read_text()) == result
    assert result["dataset"] == "mnist" and result["generated_samples"] == 500 and result["real_samples"] == 5000
    assert result["fid"] > 100 and 0 <= result["accuracy"] <= 1 and len(result["accuracy_per_class"]) == 10
    table = format_table(result)
    assert "FID" in table and "accuracy per class" in table
    assert f"{result['kid_mean']:.5f} ± {result['kid_std']:.5f}" in table and result["kid_std"] > 0
    with pytest.raises(GankitError, match="inception-weights"):
        run_eval(tmp_path / "run", n=10, inception_weights="x.pth")
    with pytest.raises(GankitError, match="--inception-weights applies to --features inception"):
        run_eval(tmp_path / "run", n=10, features="digits", inception_weights="x.pth")
    meta = json.loads((tmp_path / "run" / "generator.json").read_text())
    meta["data_spec"] = f"mnist:{tmp_path / 'moved.npz'}"  # its data moved away since training
    (tmp_path / "run" / "generator.json").write_text(json.dumps(meta))
    with pytest.raises(GankitError, match=r"is scored against the data it trained on, mnist:.*moved.npz \(generator"
                                          r".json's data_spec\), which cannot be loaded \(.*\); put it back there."):
        run_eval(tmp_path / "run", n=10)
    with pytest.raises(GankitError, match="--n"):
        run_eval(tmp_path / "run", n=2)


def test_covariance_is_the_unbiased_one_of_pytorch_fid():
    x = np.random.default_rng(0).standard_normal((10, 3))
    mean, cov = scores.mean_and_covariance(x)
    np.testing.assert_allclose(cov, (x - x.mean(0)).T @ (x - x.mean(0)) / 9)  # ddof=1, as pytorch-fid's np.cov


def test_conditional_samples_are_asked_for_the_real_datas_mix_of_classes(mnist, digits):
    """FID compares like with like: a dataset of 0s and 1s is scored on generated 0s and 1s,
    drawn as often as the real data holds them; other attributes than the data's, uniformly."""
    zeros_and_ones = mnist.labels[:, 0] <= 1
    skewed = TensorData(mnist.samples[zeros_and_ones], mnist.labels[zeros_and_ones], mnist.info, "mnist01")
    labels, source = labels_as_in(skewed, mnist.info, 2000, seed=0)
    assert source == "as in mnist01" and labels.shape == (2000, 1)
    assert torch.bincount(labels[:, 0], minlength=10)[2:].sum() == 0
    assert abs(float(labels.float().mean()) - float(skewed.labels.float().mean())) < 0.05
    assert torch.equal(labels, labels_as_in(skewed, mnist.info, 2000, seed=0)[0])  # the seed decides
    assert not torch.equal(labels, labels_as_in(skewed, mnist.info, 2000, seed=1)[0])
    other = dataclasses.replace(mnist.info, attributes=(Attribute("digit", tuple("abcdefghij")),))
    assert labels_as_in(skewed, other, 10, seed=0) == (None, "uniform")
    assert labels_as_in(skewed, dataclasses.replace(mnist.info, attributes=()), 10, seed=0) == (None, "none")
    pipeline = GeneratorPipeline(untrained("cgan", mnist.info), {"family": "cgan"})
    result = evaluate(pipeline, skewed, digits, n=200)
    assert result["labels"] == "as in mnist01" and "(labels drawn as in mnist01)" in format_table(result)
    per_class = result["accuracy_per_class"]
    assert all(per_class[d] is None for d in "23456789") and per_class["0"] is not None


def test_quick_scores_of_a_conditional_generator_are_fid_and_accuracy_only(mnist, digits):
    """metrics.jsonl takes numbers: the per-class accuracy (a dict) stays out of the quick scores."""
    assert set(quick_scores(untrained("cgan", mnist.info), mnist, digits, n=300)) == {"fid", "accuracy"}


def test_generated_and_real_samples_of_another_shape_are_refused(mnist, digits):
    rgb = TensorData(torch.zeros(20, 3, 28, 28), None, dataclasses.replace(mnist.info, shape=(3, 28, 28)), "rgb")
    with pytest.raises(GankitError, match=r"makes samples of shape \(1, 28, 28\) but rgb holds \(3, 28, 28\)"):
        evaluate(GeneratorPipeline(untrained("gan", mnist.info), {"family": "gan"}), rgb, digits, n=300)


def test_a_grayscale_run_is_scored_against_its_data_in_grayscale(tmp_path):
    from gankit.metrics.evaluate import data_shaped_like
    from gankit.data.base import DataInfo

    for i in range(3):
        Image.fromarray(np.full((20, 20, 3), (60 * i, 0, 200), np.uint8)).save(tmp_path / f"{i}.png")
    data = data_shaped_like(f"folder:{tmp_path}", DataInfo((1, 16, 16)))
    assert data.info.shape == (1, 16, 16) and len(data) == 3


def test_extractor_requests_the_library_cannot_answer_are_one_sentence(tmp_path, monkeypatch):
    from gankit.metrics.features import FeatureExtractor

    with pytest.raises(GankitError, match="Unknown feature extractor 'nope'; choose one of"):
        load_extractor("nope")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "w.pth").write_bytes(b"not weights")
    with pytest.raises(GankitError, match=str(tmp_path / "w")):  # "~" is the home folder, as in a shell
        load_extractor("digits", "~/w.pth")

    class NoClasses(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return x.flatten(1) * self.scale, None

    extractor = FeatureExtractor("plain", NoClasses(), "no-classes")
    with pytest.raises(GankitError, match="The plain features do not classify"):
        extractor.logits(torch.zeros(2, 1, 4, 4))


def test_the_cache_lives_in_the_home_folder_unless_gankit_cache_says_otherwise(tmp_path, monkeypatch):
    from gankit.cache import cache_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GANKIT_CACHE")
    assert cache_dir("images") == tmp_path / ".cache" / "gankit" / "images"
    monkeypatch.setenv("GANKIT_CACHE", "~/elsewhere")
    assert cache_dir("reference") == tmp_path / "elsewhere" / "reference"


def test_quick_scores_samples_in_eval_mode_and_restores_the_mode(mnist, digits):
    generator = untrained("gan", mnist.info).train()
    first = quick_scores(generator, mnist, digits, n=300)
    assert generator.training  # the live generator keeps training afterwards
    assert first == quick_scores(generator, mnist, digits, n=300)  # fixed seed, BatchNorm not updated
    pipeline = GeneratorPipeline(generator.eval(), {"family": "gan"})
    assert set(first) == {"fid"}  # an unconditional model has no requested classes to check
    assert evaluate(pipeline, mnist, digits, n=300)["fid"] == pytest.approx(first["fid"], rel=1e-6)


# --- the Inception path ----------------------------------------------------------------------
def test_missing_inception_weights_say_where_to_put_them(tmp_path):
    with pytest.raises(GankitError, match=FILE_NAMES[0]) as error:
        load_extractor("inception")
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in str(error.value)
    with pytest.raises(GankitError, match="not a file"):
        load_extractor("inception", weights=tmp_path / "absent.pth")


def test_inception_loads_weights_from_the_hub_cache(tmp_path, mnist):
    pytest.importorskip("torch_fidelity")
    torchvision = pytest.importorskip("torchvision")
    # torchvision's Inception-v3 without auxiliary head and with 1008 classes has the keys and
    # shapes of the FID network; random weights exercise the loading path.
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    path = tmp_path / "torch" / "hub" / "checkpoints" / FILE_NAMES[0]
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)
    extractor = load_extractor("inception")
    features, logits = extractor.features_and_logits(mnist.samples[:3])
    assert features.shape == (3, 2048) and logits.shape == (3, 1008)
    assert torch.isfinite(features).all()

    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(GankitError, match="FID Inception"):
        load_extractor("inception", weights=tmp_path / "wrong.pth")
    torch.save({"code": GankitError("not a tensor")}, tmp_path / "pickled.pth")
    with pytest.raises(GankitError, match="not a PyTorch weights file"):  # weights_only refuses objects
        load_extractor("inception", weights=tmp_path / "pickled.pth")


def test_inception_reads_8_bit_rgb_made_from_minus_1_to_1():
    from gankit.metrics.inception import InceptionExtractor

    pixels = InceptionExtractor.prepare(None, torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3))
    assert pixels.dtype == torch.uint8 and pixels.shape == (1, 3, 1, 3)
    assert pixels[0, :, 0].tolist() == [[0, 128, 255]] * 3


def test_each_attribute_is_scored_against_its_own_labels():
    from gankit.data.base import Attribute, DataInfo
    from gankit.metrics.evaluate import classifier_scores
    from gankit.metrics.features import FeatureExtractor

    hair, eyes = Attribute("hair", tuple("abcdefghijkl")), Attribute("eyes", tuple("abcdefghijk"))
    labels = torch.stack([torch.arange(60) % 12, torch.arange(60) % 11], 1)
    logits = torch.cat([torch.nn.functional.one_hot(labels[:, 0], 12), torch.nn.functional.one_hot(labels[:, 1], 11)],
                       1).float() * 10
    stub = FeatureExtractor("stub", torch.nn.Linear(1, 1), "0" * 16, attributes=(hair, eyes))
    result = classifier_scores(logits, labels, DataInfo((3, 32, 32), (hair, eyes)), stub)
    assert result["accuracy_hair"] == result["accuracy_eyes"] == 1.0
    wrong = classifier_scores(logits, labels.roll(1, 0), DataInfo((3, 32, 32), (hair, eyes)), stub)
    assert wrong["accuracy_hair"] == wrong["accuracy_eyes"] == 0.0


def test_inception_weights_given_on_the_command_line_beat_the_environment(tmp_path, monkeypatch):
    from gankit.metrics.inception import ENV_VAR, find_weights

    (tmp_path / "a.pth").write_bytes(b"a")
    (tmp_path / "b.pth").write_bytes(b"b")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "a.pth"))
    assert find_weights(tmp_path / "b.pth") == tmp_path / "b.pth" and find_weights() == tmp_path / "a.pth"


def test_precision_and_recall_compare_sets_of_equal_size(monkeypatch):
    """k-NN radii shrink as a set grows, so the larger set is cut to the smaller one's size."""
    import importlib

    from gankit.metrics.reference import ReferenceStats

    evaluate_module = importlib.import_module("gankit.metrics.evaluate")  # the package's `evaluate` is the function

    sizes = []
    monkeypatch.setattr(evaluate_module, "precision_recall", lambda a, b: sizes.append((len(a), len(b))) or (1.0, 1.0))
    real = torch.randn(100, 4)
    ref = ReferenceStats(real.double().mean(0).numpy(), np.cov(real.double().numpy(), rowvar=False), real, 100)
    evaluate_module.distribution_scores(ref, torch.randn(200, 4), seed=0)
    assert sizes == [(100, 100)]


def test_reference_statistics_count_the_real_samples_they_were_computed_from(mnist, digits, monkeypatch):
    monkeypatch.setattr(reference, "MAX_REAL", 1000)
    assert reference.compute_reference(mnist, digits).count == 1000


def test_probe_max_pools_conv_maps_to_a_grid():
    from gankit.probe import POOL_GRID, pooled

    maps = torch.arange(64.0).view(1, 1, 8, 8)
    assert POOL_GRID == 4 and pooled(maps)[0, :4].tolist() == [9.0, 11.0, 13.0, 15.0]  # each 2x2 block's largest
