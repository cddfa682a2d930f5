"""Evaluating a generator: all scores for a run (``gankit eval``), and a quick FID for training.

``evaluate`` draws ``n`` samples, compares their features with the cached ones of the real
data and, when the extractor classifies an attribute the model is conditioned on (``digits``
for ``digit``), measures how often the requested class comes out. The result is a flat
JSON-ready dict that records what it was computed with.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
import torch
from torch import Tensor

from gankit.artifacts import read_generator_meta, require_folder
from gankit.atomic import atomic_write_json, writable
from gankit.config import MIN_SCORED_SAMPLES, DataConfig
from gankit.data import DataInfo, TensorData, load_dataset
from gankit.errors import GankitError
from gankit.metrics.features import FeatureExtractor, default_extractor, load_extractor
from gankit.metrics.reference import ReferenceStats, reference_stats, seeded_subset
from gankit.metrics.scores import (
    class_histogram, conditional_accuracy, frechet_distance, inception_score, kid,
    mean_and_covariance, precision_recall,
)
from gankit.device import resolve_device
from gankit.models.base import Generator, evaluating
from gankit.models.registry import get_family
from gankit.pipeline import GeneratorPipeline, load


def check_sample_count(n: int) -> None:
    if n < MIN_SCORED_SAMPLES:
        raise GankitError(f"Scoring needs at least {MIN_SCORED_SAMPLES} generated samples, not {n}; raise --n.")


def check_images(info: DataInfo) -> None:
    if not info.is_image:
        raise GankitError(f"These scores compare images, not samples of shape {tuple(info.shape)}; toy runs "
                          "report their mode metrics in metrics.jsonl.")


def check_inputs(info: DataInfo, real: TensorData, extractor: FeatureExtractor, n: int) -> None:
    check_sample_count(n)
    check_images(info)
    if tuple(info.shape) != tuple(real.info.shape):
        raise GankitError(f"The generator makes samples of shape {tuple(info.shape)} but {real.name} holds "
                          f"{tuple(real.info.shape)}; evaluate against the data the model was trained on.")
    if len(real) < MIN_SCORED_SAMPLES:  # a covariance, and precision/recall's 3 nearest neighbours, need more
        raise GankitError(f"{real.name} holds {len(real)} real samples; scoring needs at least {MIN_SCORED_SAMPLES}, "
                          "so evaluate against a larger dataset.")
    extractor.check_shape(tuple(info.shape))


def labels_as_in(real: TensorData, info: DataInfo, n: int, seed: int) -> tuple[Tensor | None, str]:
    """Labels for ``n`` samples of a conditional generator, and how they were drawn: label rows of
    the real data, drawn with replacement (as stylegan2-ada's metrics do), so that the generated set
    has the real one's mix of classes and FID compares like with like; uniformly (None: the
    generator draws them) when the real data hold other attributes or none."""
    if not info.attributes:
        return None, "none"
    if real.labels is None or tuple(real.info.attributes) != tuple(info.attributes):
        return None, "uniform"
    rows = torch.randint(len(real.labels), (n,), generator=torch.Generator().manual_seed(seed))
    return real.labels[rows], f"as in {real.name}"


def distribution_scores(ref: ReferenceStats, fake: Tensor, seed: int) -> dict:
    """FID, KID and precision/recall of generated features against the real ones."""
    kid_mean, kid_std = kid(ref.features, fake, seed=seed)
    # Precision and recall compare sets of equal size: k-NN radii shrink as a set grows.
    m = min(len(ref.features), len(fake))
    precision, recall = precision_recall(ref.features[seeded_subset(len(ref.features), m, seed)],
                                         fake[seeded_subset(len(fake), m, seed)])
    return {"fid": frechet_distance(ref.mean, ref.cov, *mean_and_covariance(fake)),
            "kid_mean": kid_mean, "kid_std": kid_std, "precision": precision, "recall": recall}


def classifier_scores(logits: Tensor, labels: Tensor | None, info: DataInfo, extractor: FeatureExtractor) -> dict:
    """IS (for a single classification), and per attribute the extractor classifies: the
    predicted-class histogram and, when the model is conditioned on it, the accuracy of the
    requested values. Keys get an ``_<attribute>`` suffix when there are several."""
    result: dict = {}
    if len(extractor.attributes) <= 1:  # IS is defined for one distribution over classes
        result["is_mean"], result["is_std"] = inception_score(logits)
    parts = extractor.split_logits(logits)
    for attribute in extractor.attributes:
        suffix = f"_{attribute.name}" if len(parts) > 1 else ""
        predicted = parts[attribute.name].argmax(dim=1).numpy()
        names = attribute.values
        if attribute in info.attributes and labels is not None:
            column = info.attributes.index(attribute)
            acc = conditional_accuracy(labels[:, column].numpy(), predicted, attribute.num_classes)
            result[f"accuracy{suffix}"] = acc.overall
            result[f"accuracy_per_class{suffix}"] = {
                v: None if math.isnan(a) else float(a) for v, a in zip(names, acc.per_class)}
            histogram = acc.histogram
        else:
            histogram = class_histogram(predicted, attribute.num_classes)
        result[f"class_histogram{suffix}"] = {v: int(c) for v, c in zip(names, histogram)}
    return result


def evaluate(pipeline: GeneratorPipeline, real: TensorData, extractor: FeatureExtractor, n: int = 5000,
             seed: int = 0, cache: Path | None = None) -> dict:
    """All scores of ``n`` samples of ``pipeline`` (labels drawn as in ``real``, ``seed``) against ``real``."""
    start = time.perf_counter()
    check_inputs(pipeline.info, real, extractor, n)
    ref = reference_stats(real, extractor, cache)
    labels, label_source = labels_as_in(real, pipeline.info, n, seed)
    images, labels = pipeline.generate(n, labels, seed=seed)
    check_finite(images)
    features, logits = extractor.features_and_logits(images)
    result = {"dataset": real.name, "extractor": extractor.name, "extractor_fingerprint": extractor.fingerprint,
              "real_samples": ref.count, "generated_samples": n, "seed": seed, "labels": label_source}
    result.update(distribution_scores(ref, features, seed))
    if logits is not None:
        result.update(classifier_scores(logits, labels, pipeline.info, extractor))
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def check_finite(images: torch.Tensor) -> None:
    """Samples with NaN or inf have no features to score (the covariances' eigensolver fails on them)."""
    if not bool(torch.isfinite(images).all()):
        raise GankitError("The generator produced NaN or infinite values, so its samples cannot be scored: its "
                          "weights are damaged or its training diverged; score another run or retrain this one.")


def quick_scores(generator: Generator, real: TensorData, extractor: FeatureExtractor, n: int = 2000,
                 device: str | torch.device = "cpu", seed: int = 0, cache: Path | None = None) -> dict[str, float]:
    """FID (and the requested-class accuracy of conditional models) of ``n`` samples from a
    generator being trained: a trend to watch, not a number to report, since FID is biased
    upwards for small ``n``. The real statistics come from the cache."""
    check_inputs(generator.info, real, extractor, n)
    ref = reference_stats(real, extractor.to(device), cache)
    labels = labels_as_in(real, generator.info, n, seed)[0]
    with evaluating(generator):
        images, labels = GeneratorPipeline(generator, {"family": "training"}).generate(n, labels, seed=seed)
    check_finite(images)
    features, logits = extractor.features_and_logits(images)
    result = {"fid": frechet_distance(ref.mean, ref.cov, *mean_and_covariance(features))}
    if logits is not None:
        scores = classifier_scores(logits, labels, generator.info, extractor)
        result.update({k: v for k, v in scores.items() if k.startswith("accuracy") and "per_class" not in k})
    return result


def run_data(run_dir: Path, info: DataInfo) -> TensorData:
    """The real data a run was trained on, at the generator's size and channels."""
    meta = read_generator_meta(Path(run_dir), "evaluate a folder that `gankit train` wrote.")
    spec = meta.get("data_spec") or get_family(meta["family"]).default_data
    try:
        return data_shaped_like(spec, info)
    except GankitError as e:  # moved or deleted since training: say whose data it is
        raise GankitError(f"{run_dir} is scored against the data it trained on, {spec} (generator.json's "
                          f"data_spec), which cannot be loaded ({str(e).rstrip('.')}); put it back there.") from None


def data_shaped_like(spec: str, info: DataInfo) -> TensorData:
    """The data of ``spec`` at the size and channels of data ``info`` describes (images only)."""
    options = DataConfig(spec, image_size=info.shape[-1], channels=info.shape[0]) if info.is_image \
        else DataConfig(spec)
    return load_dataset(spec, options)


def run_eval(run_dir: str | Path, n: int = 5000, features: str | None = None, inception_weights: str | None = None,
             json_path: str | Path | None = None, device: str = "auto", seed: int = 0) -> dict:
    """``gankit eval``: evaluate a run folder's generator against its training data, in ``features``
    (default: the feature space training scores this data in, ``default_extractor``)."""
    check_sample_count(n)  # before loading anything: the data can take seconds
    if json_path:
        require_folder(Path(run_dir))  # before the JSON path's folder is made
        writable(json_path, "The JSON path")
    if inception_weights and features not in (None, "inception"):
        raise GankitError(f"--inception-weights applies to --features inception, not {features}; drop it.")
    device = resolve_device(device)
    pipeline = load(run_dir, device)
    check_images(pipeline.info)  # before the feature space is chosen: toy runs have none
    real = run_data(Path(run_dir), pipeline.info)
    features = features or ("inception" if inception_weights else default_extractor(pipeline.info, real.name))
    extractor = load_extractor(features, inception_weights, device)
    result = {"run": str(run_dir), "family": pipeline.family, **evaluate(pipeline, real, extractor, n, seed)}
    if json_path:
        atomic_write_json(Path(json_path), result)
    return result


def format_table(result: dict) -> str:
    """The result as aligned text lines, for the terminal."""
    rows = [("FID", f"{result['fid']:.3f}"),
            ("KID", f"{result['kid_mean']:.5f} ± {result['kid_std']:.5f}"),
            ("precision", f"{result['precision']:.3f}"), ("recall", f"{result['recall']:.3f}")]
    if "is_mean" in result:
        rows.append(("IS", f"{result['is_mean']:.3f} ± {result['is_std']:.3f}"))
    for key, value in result.items():
        if key.startswith("accuracy_per_class"):
            rows.append((key.replace("_", " "), "  ".join(
                f"{k}: {'-' if v is None else f'{v:.2f}'}" for k, v in value.items())))
        elif key.startswith("accuracy"):
            rows.append((key.replace("_", " "), f"{value:.3f}"))
        elif key.startswith("class_histogram"):
            rows.append((key.replace("class_histogram", "predicted classes").replace("_", " "),
                         "  ".join(f"{k}: {v}" for k, v in value.items())))
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    drawn = {"none": "", "uniform": " (labels drawn uniformly)"}
    labels = drawn.get(result["labels"], f" (labels drawn {result['labels']})")
    lines.append(f"{result['generated_samples']} generated{labels} vs {result['real_samples']} real of "
                 f"{result['dataset']}; features {result['extractor']} ({result['extractor_fingerprint']}); "
                 f"{result['seconds']} s")
    return "\n".join(lines)
