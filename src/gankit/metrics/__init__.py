"""Evaluation: FID, KID, IS, precision/recall and conditional accuracy on pluggable features.

``evaluate`` and ``run_eval`` score a generator against its real data, ``quick_scores`` is the
cheap score for training, ``scores`` holds the formulas and ``features`` the extractor registry
(``digits``: gankit's MNIST classifier; ``faces``: the embedded faces' attribute classifier;
``inception``: the standard FID network).
"""

from gankit.metrics import attributes, digits, inception  # noqa: F401  (register their extractors)
from gankit.metrics.evaluate import evaluate, format_table, quick_scores, run_eval
from gankit.metrics.features import (
    FeatureExtractor, default_extractor, extractor_names, load_extractor, register_extractor,
)
from gankit.metrics.reference import ReferenceStats, reference_stats

__all__ = [
    "FeatureExtractor", "ReferenceStats", "default_extractor", "evaluate", "extractor_names", "format_table",
    "load_extractor",
    "quick_scores", "reference_stats", "register_extractor", "run_eval",
]
