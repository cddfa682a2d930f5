"""Evaluation: FID, KID, IS, precision/recall and conditional accuracy on pluggable features.

``evaluate`` and ``run_eval`` score a generator against its real data, ``quick_fid`` is the
cheap score for training, ``scores`` holds the formulas and ``features`` the extractor registry
(``digits``: gankit's MNIST classifier; ``inception``: the standard FID network).
"""

from gankit.metrics import digits, inception  # noqa: F401  (register their extractors)
from gankit.metrics.evaluate import evaluate, format_table, quick_fid, run_eval
from gankit.metrics.features import FeatureExtractor, extractor_names, load_extractor, register_extractor
from gankit.metrics.reference import ReferenceStats, reference_stats

__all__ = [
    "FeatureExtractor", "ReferenceStats", "evaluate", "extractor_names", "format_table", "load_extractor",
    "quick_fid", "reference_stats", "register_extractor", "run_eval",
]
