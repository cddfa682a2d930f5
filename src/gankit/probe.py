"""What a trained GAN learnt about its data, measured with labels it never trained on.

``probe``: the DCGAN paper's representation test. D's conv and dense layers are read on
labelled real images (each conv map max-pooled to a 4x4 grid, then all layers concatenated),
and a linear classifier (standardised features, logistic regression) is fitted on 100 and on
1,000 labelled images and scored on held-out ones. It works for any family whose D reads
images alone, through forward hooks on its ``Conv2d`` and ``Linear`` layers.

InfoGAN's unsupervised classes: ``code_recovery`` generates images per value of a categorical
code and classifies them with the digits classifier; ``q_accuracy`` classifies real digits with
Q's categorical head. Codes are not named after classes, so both match codes to classes with
the Hungarian algorithm before counting (``matched_accuracy``), as the paper's 5% error does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from gankit.artifacts import built_from_file, read_generator_meta, read_json
from gankit.config import RUN_CONFIG_KEYS, config_from_dict
from gankit.data import TensorData
from gankit.data.base import DataInfo
from gankit.errors import GankitError
from gankit.data.registry import holds_vectors
from gankit.device import resolve_device
from gankit.metrics.evaluate import data_shaped_like, run_data
from gankit.models import get_family
from gankit.models.base import evaluating
from gankit.models.infogan import InfoGenerator, LatentCodes, latent_codes
from gankit.train.checkpoint import latest_checkpoint, list_checkpoints, module_weights
from gankit.upscale import is_sr_run

POOL_GRID = 4  # the DCGAN paper pools every conv layer to 4x4
BATCH = 500
PROBE_SEED_MAX = 2**32 - 1  # the seed is scikit-learn's random_state, which takes at most this


# --- loading a run's D ---------------------------------------------------------------------
def run_config(run_dir: str | Path) -> dict[str, Any]:
    return read_json(Path(run_dir) / "config.json", "probe needs the run folder that `gankit train` wrote.",
                     RUN_CONFIG_KEYS)


def run_info(run_dir: str | Path) -> DataInfo:
    """The shape (and attributes) of the data the run's networks were built for."""
    return DataInfo.from_dict(read_generator_meta(Path(run_dir), "train the run until it writes a checkpoint.")["data"])


def load_discriminator(run_dir: str | Path, info: DataInfo | None = None) -> tuple[type, Any, nn.Module]:
    """(family, model settings, D with the newest checkpoint's weights, in eval mode) of a run
    whose data ``info`` describes (read from its generator.json when not given)."""
    run = Path(run_dir)
    saved = run_config(run)
    family = get_family(saved["model"])
    cfg = config_from_dict(family.Config, saved["model_cfg"], run / "config.json", "model_cfg")
    info = info or run_info(run)
    D = built_from_file(lambda: family.build_discriminator(cfg, info), cfg, run / "config.json", "a discriminator")
    if not list_checkpoints(run / "checkpoints"):
        raise GankitError(f"{run} has no checkpoint, which is where D is kept; train (or resume) it until one is "
                          "written, then probe it.")
    ckpt, skipped = latest_checkpoint(run / "checkpoints")
    for line in skipped:  # a damaged newest checkpoint: the D read here is older than the run's generator
        print(f"warning: {line}", file=sys.stderr)
    try:
        D.load_state_dict(module_weights(ckpt, "discriminator"))
    except RuntimeError:  # missing keys or size mismatches: config.json no longer builds this D
        raise GankitError(f"The discriminator in the checkpoint of {run} does not fit the one its config.json "
                          "builds; restore config.json as `gankit train` wrote it.") from None
    return family, cfg, D.eval().requires_grad_(False)


def check_same_shape(run_dir: str | Path, info: DataInfo, data: TensorData) -> None:
    """D reads images of the shape it trained on (``info``'s); other data must be resized to it first."""
    shape = tuple(info.shape)
    if tuple(data.info.shape) != shape:
        raise GankitError(f"{data.name} holds images of shape {tuple(data.info.shape)} but {run_dir} trained on "
                          f"{shape}; probe with data of the run's shape, or drop --data to use the run's own.")


def digit_labels(data: TensorData) -> np.ndarray:
    if data.labels is None:
        raise GankitError(f"Dataset {data.name!r} has no labels; probing needs labelled images such as mnist.")
    return data.labels[:, 0].cpu().numpy()


# --- the linear probe ------------------------------------------------------------------------
def pooled(output: Tensor) -> Tensor:
    """A layer's output as (N, F): conv maps max-pooled to a POOL_GRID x POOL_GRID grid."""
    output = output.float()
    if output.dim() == 4:
        output = F.adaptive_max_pool2d(output, POOL_GRID)
    return output.flatten(1)


@torch.inference_mode()
def layer_features(discriminator: nn.Module, images: Tensor) -> np.ndarray:
    """Every Conv2d and Linear output of ``discriminator`` on ``images``, pooled and concatenated."""
    layers = [m for m in discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers:
        raise GankitError("This discriminator has no Conv2d or Linear layers to probe.")
    if getattr(discriminator, "condition", None) is not None:  # an MLP cgan's D multiplies by label embeddings
        raise GankitError("This discriminator needs labels to read an image, so its features would "
                          "hold the labels; probe a model whose D reads images alone.")
    outputs: list[Tensor] = []
    hooks = [m.register_forward_hook(lambda module, args, out: outputs.append(pooled(out))) for m in layers]
    device = next(discriminator.parameters()).device
    chunks = []
    try:
        for start in range(0, len(images), BATCH):
            outputs.clear()
            discriminator(images[start:start + BATCH].to(device))
            chunks.append(torch.cat(outputs, dim=1).cpu())
    finally:
        for hook in hooks:
            hook.remove()
    return torch.cat(chunks).numpy()


def linear_probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Test accuracy of a logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    classifier.fit(train_x, train_y)
    return float(classifier.score(test_x, test_y))


def labelled_splits(labels: np.ndarray, n_labels: Sequence[int], n_test: int,
                    seed: int) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Class-balanced training indices for each label budget, all drawn apart from the test indices."""
    from sklearn.model_selection import train_test_split

    classes = len(np.unique(labels))
    largest = max(n_labels)
    if n_test + classes > len(labels):  # no label budget can help
        raise GankitError(f"The probe holds out {n_test} test images and needs at least {classes} more to learn from, "
                          f"but the dataset holds {len(labels)}; probe a larger dataset.")
    if largest + n_test > len(labels):
        raise GankitError(f"{largest} labelled and {n_test} test images need {largest + n_test} images but the "
                          f"dataset holds {len(labels)}; lower the label budgets (--budgets) or probe a larger "
                          "dataset.")
    for n in n_labels:
        if n < classes:
            raise GankitError(f"A probe with {n} labels cannot see each of the {classes} classes; give at least "
                              f"{classes}.")
    try:
        pool, test = train_test_split(np.arange(len(labels)), test_size=n_test, stratify=labels, random_state=seed)
        train = {n: pool if n == len(pool) else
                 train_test_split(pool, train_size=n, stratify=labels[pool], random_state=seed)[0] for n in n_labels}
    except ValueError:  # scikit-learn's stratified split needs every class in every part
        values, counts = np.unique(labels, return_counts=True)
        raise GankitError(f"Class {values[counts.argmin()]} has only {counts.min()} image(s) in the data, too few to "
                          "appear in both the probe's training and test images; probe data with more of each class, "
                          "or lower --budgets.") from None
    return train, test


def probe(source: str | Path | nn.Module, data: TensorData, n_labels: Sequence[int] = (100, 1000),
          n_test: int = 2000, seed: int = 0) -> dict[str, float | int]:
    """Linear-probe accuracy of D's features with each label budget, on ``n_test`` held-out images.

    ``source`` is a run folder (D from its newest checkpoint) or a discriminator module.
    """
    D = source
    if isinstance(source, (str, Path)):
        info = run_info(source)
        check_same_shape(source, info, data)
        D = load_discriminator(source, info)[2]
    labels = digit_labels(data)
    train, test = labelled_splits(labels, n_labels, n_test, seed)
    with evaluating(D):  # the caller's module goes back to the mode it had
        features = layer_features(D, data.samples)
    result: dict[str, float | int] = {"features": features.shape[1], "test_images": len(test)}
    for n, idx in train.items():
        result[f"accuracy_{n}"] = linear_probe_accuracy(features[idx], labels[idx], features[test], labels[test])
    return result


# --- InfoGAN's categorical code ----------------------------------------------------------------
def confusion(predicted: np.ndarray, truth: np.ndarray, n_predicted: int, n_true: int) -> np.ndarray:
    """Counts (n_predicted, n_true): how often each predicted cluster met each true class."""
    return np.bincount(predicted * n_true + truth, minlength=n_predicted * n_true).reshape(n_predicted, n_true)


def matched_accuracy(counts: np.ndarray) -> tuple[float, np.ndarray]:
    """Accuracy after the one-to-one cluster -> class matching that maximises it (Hungarian
    algorithm), and that matching (class of each cluster; -1 where a cluster is left unmatched)."""
    rows, cols = linear_sum_assignment(counts, maximize=True)
    mapping = np.full(counts.shape[0], -1)
    mapping[rows] = cols
    return float(counts[rows, cols].sum() / counts.sum()), mapping


def categorical_code(codes: LatentCodes, name: str):
    code = codes.lookup(name)
    if not code.categorical:
        raise GankitError(f"Code {name} is continuous; give a categorical code such as {codes.categorical[0].name}."
                          if codes.categorical else "This model has no categorical code to match with classes.")
    return code


@torch.inference_mode()
def code_recovery(generator: InfoGenerator, classifier, per_value: int = 500, code: str = "c1",
                  seed: int = 0) -> float:
    """Matched accuracy of ``classifier`` (e.g. the digits extractor) on images generated per value of ``code``."""
    c = categorical_code(generator.codes, code)
    device = next(generator.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    values, predicted = [], []
    for v in range(c.values):
        z = generator.latent_with_codes(per_value, {c.name: v}, g, device)
        images = torch.cat([generator(z[i:i + BATCH]).float().cpu() for i in range(0, per_value, BATCH)])
        predicted.append(classifier.logits(images).argmax(1).numpy())
        values.append(np.full(per_value, v))
    n_classes = classifier.attributes[0].num_classes
    return matched_accuracy(confusion(np.concatenate(values), np.concatenate(predicted), c.values, n_classes))[0]


@torch.inference_mode()
def q_accuracy(discriminator: nn.Module, codes: LatentCodes, data: TensorData, code: str = "c1") -> float:
    """Matched accuracy of Q's ``code`` head as an unsupervised classifier of the real labelled images."""
    c = categorical_code(codes, code)
    labels = digit_labels(data)
    device = next(discriminator.parameters()).device
    heads = (discriminator(data.take(slice(i, i + BATCH)).to(device))[1] for i in range(0, len(data), BATCH))
    predicted = np.concatenate([q[:, c.start:c.start + c.values].argmax(1).cpu().numpy() for q in heads])
    n_classes = data.info.attributes[0].num_classes
    return matched_accuracy(confusion(predicted, labels, c.values, n_classes))[0]


@torch.inference_mode()
def continuous_r2(generator: InfoGenerator, discriminator: nn.Module, n: int = 2000, seed: int = 0) -> dict[str, float]:
    """For each continuous code, the share of its variance that Q's estimate explains (R^2) on n
    images of ``generator``: near 0 when G ignores the code, near 1 when the image shows it."""
    device = next(generator.parameters()).device
    z = generator.sample_latent(n, torch.Generator(device=device).manual_seed(seed), device)
    q = torch.cat([discriminator(generator(z[i:i + BATCH]))[1].float() for i in range(0, n, BATCH)])
    codes = z[:, generator.noise_dim:]
    return {c.name: round(float(1 - (codes[:, c.start] - q[:, c.start]).square().mean() / codes[:, c.start].var()), 4)
            for c in generator.codes.continuous}


def infogan_scores(run_dir: str | Path, data: TensorData, per_value: int = 500, seed: int = 0,
                   loaded: tuple[type, Any, nn.Module] | None = None) -> dict[str, float]:
    """Q's accuracy on ``data``, how much of each continuous code Q reads back from the images,
    and code recovery (of the sampling generator) where gankit has a classifier of the data's
    classes (digits, faces); elsewhere it is left out, with a note. ``loaded`` is
    ``load_discriminator(run_dir)`` when the caller has it already."""
    import gankit
    from gankit.metrics import default_extractor, load_extractor

    family, cfg, D = loaded or load_discriminator(run_dir)
    if family.name != "infogan":
        raise GankitError(f"{run_dir} holds a {family.name} run; code recovery applies to infogan runs.")
    device = next(D.parameters()).device
    pipe = gankit.load(run_dir, device)
    scores = {"q_accuracy": q_accuracy(D, latent_codes(cfg), data),
              "continuous_r2": continuous_r2(pipe.generator, D, seed=seed)}
    classifier = default_extractor(pipe.info, pipe.meta.get("data_spec", ""))
    if classifier == "inception":  # ImageNet's classes are not the data's
        print(f"note: code recovery needs a classifier of {data.name}'s classes, which gankit has for digits and "
              "faces only; it is left out.", file=sys.stderr)
        return scores
    recovered = code_recovery(pipe.generator, load_extractor(classifier, device=device), per_value, seed=seed)
    return {"code_recovery": recovered, **scores}


def probe_run(run_dir: str | Path, data: TensorData | str | None = None, n_labels: Sequence[int] = (100, 1000),
              seed: int = 0, device: str = "cpu") -> dict[str, float | int]:
    """What `gankit probe RUN` prints: the linear probe, plus code recovery for infogan runs.
    ``data`` is labelled images, a dataset spec (loaded at the run's image size), or None for the
    data the run trained on; the networks run on ``device`` (auto, cpu, cuda)."""
    target = resolve_device(device)  # before any loading: a GPU that is not there is the first error
    if is_sr_run(run_dir):
        raise GankitError(f"{run_dir} is a super-resolution run; probe reads the discriminator of a GAN trained on "
                          f"labelled images, and `gankit eval {run_dir}` scores super-resolution.")
    info = run_info(run_dir)
    if not info.is_image:
        raise GankitError(f"{run_dir} trained on vectors of shape {tuple(info.shape)}, not images; probe reads the "
                          "discriminator of a GAN trained on labelled images (a toy run's mode metrics are in its "
                          "metrics.jsonl).")
    if isinstance(data, str):
        if holds_vectors(data):  # checked by name: its loader would blame the image size
            raise GankitError(f"--data {data} holds vectors, not images; probe {run_dir} with labelled images of "
                              "its shape, or drop --data to use the run's own.")
        data = data_shaped_like(data, info)
    data = data if data is not None else run_data(Path(run_dir), info)
    check_same_shape(run_dir, info, data)
    family, cfg, D = load_discriminator(run_dir, info)  # once: it prints any checkpoint it had to skip
    D.to(target)
    result = probe(D, data, n_labels, seed=seed)
    if family.name == "infogan":
        result.update(infogan_scores(run_dir, data, seed=seed, loaded=(family, cfg, D)))
    return result
