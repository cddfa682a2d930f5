"""The scores themselves, as plain functions of feature arrays, logits and labels.

FID (Heusel et al. 2017), KID (Binkowski et al. 2018), IS (Salimans et al. 2016), precision
and recall (Kynkaanniemi et al. 2019) and the accuracy of conditional samples. Inputs are
numpy arrays or torch tensors; nothing here knows about networks or datasets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

ArrayLike = np.ndarray | Tensor


def as_float64(x: ArrayLike) -> np.ndarray:
    return (x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)).astype(np.float64)


def as_tensor(x: ArrayLike) -> Tensor:
    return (x.detach().cpu() if isinstance(x, Tensor) else torch.from_numpy(np.asarray(x))).float()


# --- FID ---------------------------------------------------------------------------------------
def mean_and_covariance(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and unbiased covariance (F, F) of (N, F) features, in float64."""
    x = as_float64(features)
    if len(x) < 2:
        raise ValueError("a covariance needs at least two samples")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix; rounding's negative
    eigenvalues are clipped to 0 so that a singular covariance (few samples) stays real."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: ArrayLike, cov1: ArrayLike, mu2: ArrayLike, cov2: ArrayLike) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)) between two Gaussians.

    Tr((C1 C2)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the
    symmetric matrix C1^(1/2) C2 C1^(1/2), which has the same eigenvalues as C1 C2. Unlike
    ``scipy.linalg.sqrtm(C1 @ C2)`` it never returns complex values or fails on singular
    covariances.
    """
    mu1, mu2, cov1, cov2 = (as_float64(a) for a in (mu1, mu2, cov1, cov2))
    root1 = psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt, 0.0))


def fid(features1: ArrayLike, features2: ArrayLike) -> float:
    """FID between two feature sets (N1, F) and (N2, F)."""
    return frechet_distance(*mean_and_covariance(features1), *mean_and_covariance(features2))


# --- KID ---------------------------------------------------------------------------------------
def polynomial_mmd2(x: Tensor, y: Tensor) -> float:
    """Unbiased MMD^2 of two equal-size sets with the kernel k(a, b) = (a.b / d + 1)^3."""
    m, d = len(x), x.shape[1]

    def kernel_sums(a: Tensor, b: Tensor) -> tuple[float, float]:
        """Sum of all kernel values and of the diagonal. The kernel is float32 (each value is
        exact to 1e-7), the sums are float64 since MMD^2 is a small difference of large sums;
        numpy accumulates float32 in float64 many times faster than torch does."""
        k = torch.addmm(torch.ones(()), a, b.T, alpha=1 / d).pow_(3).numpy()
        return float(k.sum(dtype=np.float64)), float(np.trace(k, dtype=np.float64))

    (xx, xx_diag), (yy, yy_diag), (xy, _) = kernel_sums(x, x), kernel_sums(y, y), kernel_sums(x, y)
    return (xx - xx_diag + yy - yy_diag) / (m * (m - 1)) - 2 * xy / (m * m)


def kid(features1: ArrayLike, features2: ArrayLike, subsets: int = 50, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID: mean and standard deviation of the unbiased polynomial MMD^2 over random subsets.

    Each subset draws ``subset_size`` samples (at most the smaller set's size) without
    replacement from each set.
    """
    x, y = as_tensor(features1), as_tensor(features2)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least two samples in each set")
    g = torch.Generator().manual_seed(seed)
    values = [polynomial_mmd2(x[torch.randperm(len(x), generator=g)[:m]], y[torch.randperm(len(y), generator=g)[:m]])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


# --- IS ----------------------------------------------------------------------------------------
def inception_score(logits: ArrayLike, splits: int = 10, shuffle_seed: int | None = 2020) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) || p(y))): mean and standard deviation over ``splits`` parts.

    The rows are shuffled first, as torch-fidelity shuffles them (with its seed, 2020): parts cut
    from samples sorted by class hold one class each, and the real digits, stored sorted, then
    scored IS 1.04 instead of 8.3. ``shuffle_seed=None`` keeps the order given."""
    log_p = torch.log_softmax(as_tensor(logits).double(), dim=1)
    if shuffle_seed is not None:
        log_p = log_p[np.random.RandomState(shuffle_seed).permutation(len(log_p))]
    scores = []
    n = len(log_p)
    # always `splits` parts, cut at i * n // splits as torch-fidelity cuts them (chunk may give fewer)
    for part in (log_p[i * n // splits:(i + 1) * n // splits] for i in range(splits)):
        log_marginal = torch.logsumexp(part, dim=0) - np.log(len(part))
        kl = (part.exp() * (part - log_marginal)).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))


# --- precision and recall ----------------------------------------------------------------------
def knn_radii(features: Tensor, k: int, chunk: int) -> Tensor:
    """Distance from each point to its k-th nearest other point in the same set."""
    radii = [torch.cdist(features[i:i + chunk], features).kthvalue(k + 1, dim=1).values  # +1: itself
             for i in range(0, len(features), chunk)]
    return torch.cat(radii)


def fraction_inside(points: Tensor, centres: Tensor, radii: Tensor, chunk: int) -> float:
    """Fraction of ``points`` inside at least one ball (centre, radius)."""
    inside = [(torch.cdist(points[i:i + chunk], centres) <= radii).any(dim=1)
              for i in range(0, len(points), chunk)]
    return float(torch.cat(inside).float().mean())


def precision_recall(real: ArrayLike, fake: ArrayLike, k: int = 3, chunk: int = 1000) -> tuple[float, float]:
    """Improved precision and recall: the share of fakes inside the real k-NN manifold, and
    of reals inside the fake one. Use sets of equal size: radii shrink as a set grows."""
    real, fake = as_tensor(real), as_tensor(fake)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision and recall need more than k={k} samples in each set")
    precision = fraction_inside(fake, real, knn_radii(real, k, chunk), chunk)
    recall = fraction_inside(real, fake, knn_radii(fake, k, chunk), chunk)
    return precision, recall


# --- conditional accuracy ----------------------------------------------------------------------
@dataclass
class ClassAccuracy:
    """How often a classifier finds the class that was asked for."""

    overall: float
    per_class: np.ndarray  # (K,) accuracy among samples requested as each class; nan if none
    histogram: np.ndarray  # (K,) how many samples were predicted as each class


def class_histogram(predicted: ArrayLike, num_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(predicted, dtype=np.int64).reshape(-1), minlength=num_classes)[:num_classes]


def conditional_accuracy(requested: ArrayLike, predicted: ArrayLike, num_classes: int) -> ClassAccuracy:
    requested = np.asarray(requested, dtype=np.int64).reshape(-1)
    predicted = np.asarray(predicted, dtype=np.int64).reshape(-1)
    correct = requested == predicted
    asked = np.bincount(requested, minlength=num_classes)
    hits = np.bincount(requested, weights=correct, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = hits / asked
    return ClassAccuracy(float(correct.mean()), per_class, class_histogram(predicted, num_classes))
