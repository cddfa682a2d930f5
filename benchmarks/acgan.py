"""ACGAN on the embedded faces: do the generated faces show the hair and eye colour asked for?

Trains ``acgan`` with its defaults on ``faces`` through a list of budgets (one run, resumed
from one budget to the next, so each budget is scored as if trained for exactly that long),
and after each draws ``--n`` faces with random labels and reports, by the ``faces`` attribute
classifier, the fraction that show the requested hair colour and eye colour, and the FID of
the faces in that classifier's feature space. Prints a table and writes
benchmarks/results/acgan.json. The target (issue 4): hair >= 95% and eyes >= 90% within the
default budget of ``gankit train acgan``.

    python benchmarks/acgan.py                          # budgets 1/4, 1/2 and all of the default steps
    python benchmarks/acgan.py --steps 500,1000,2000 --threads 2
    python benchmarks/acgan.py --minutes 5,10,20        # wall-clock budgets instead of steps
    python benchmarks/acgan.py --steps 1500 --set model.aux_weights=1,2 --out /tmp/acgan.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import gankit
from gankit.config import RunConfig, parse_set, set_value, validate
from gankit.data import TensorData, load_dataset
from gankit.metrics.attributes import FacesExtractor, attribute_accuracy, load_faces
from gankit.metrics.reference import reference_stats
from gankit.metrics.scores import frechet_distance, mean_and_covariance
from gankit.models import get_family
from gankit.train import Trainer
from gankit.train.runtime import cpu_description

RESULTS = Path(__file__).parent / "results" / "acgan.json"
TARGET = {"hair": 0.95, "eyes": 0.90}


def default_config(threads: int, seed: int, overrides: list[str] = ()) -> RunConfig:
    """The defaults of ``gankit train acgan`` on faces, then ``overrides`` ("section.key=value")."""
    family = get_family("acgan")
    cfg = RunConfig("acgan", family.default_config("faces"))
    for key, value in family.default_train("faces").items():
        set_value(cfg, f"train.{key}", value)
    set_value(cfg, "train.threads", threads)
    set_value(cfg, "train.seed", seed)
    for override in overrides:
        set_value(cfg, *parse_set(override))
    cfg.train.progress = False
    return cfg


def set_budget(cfg: RunConfig, steps: int | None, minutes: float | None) -> None:
    """Steps or minutes (then the clock alone ends the run); checkpoints only at the end."""
    cfg.train.steps = steps if steps is not None else 10**9
    cfg.train.minutes = minutes or 0.0
    cfg.train.checkpoint_every = 10**9
    validate(cfg)


def score(run: Path, real: TensorData, extractor: FacesExtractor, n: int, seed: int) -> dict:
    """Attribute accuracy of ``n`` generated faces with random labels, and their FID."""
    images, labels = gankit.load(run).generate(n, seed=seed)
    features, logits = extractor.features_and_logits(images)
    reference = reference_stats(real, extractor)
    accuracy = attribute_accuracy(extractor.split_logits(logits), labels)
    return {**{f"{k}_accuracy": round(v, 4) for k, v in accuracy.items()},
            "fid": round(frechet_distance(reference.mean, reference.cov, *mean_and_covariance(features)), 3)}


def table(rows: list[dict]) -> str:
    lines = [f"{'budget':>12} {'steps':>6} {'seconds':>8} {'hair':>6} {'eyes':>6} {'FID':>8}"]
    for r in rows:
        lines.append(f"{r['budget']:>12} {r['steps']:>6} {r['seconds']:>8.0f} {r['hair_accuracy']:>6.1%} "
                     f"{r['eyes_accuracy']:>6.1%} {r['fid']:>8.2f}")
    return "\n".join(lines)


def parse_list(text: str | None, kind: type) -> list:
    return sorted(kind(v) for v in text.split(",")) if text else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", help="comma-separated budgets in generator steps")
    parser.add_argument("--minutes", help="comma-separated budgets in wall-clock minutes (instead of --steps)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=2000, help="generated faces scored per budget")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting as gankit train --set does (repeatable), e.g. model.aux_weights=1,2")
    args = parser.parse_args()

    cfg = default_config(args.threads, args.seed, args.set)
    minutes = parse_list(args.minutes, float)
    steps = parse_list(args.steps, int) or ([] if minutes else [cfg.train.steps // 4, cfg.train.steps // 2,
                                                                cfg.train.steps])
    budgets = [(s, None, f"{s} steps") for s in steps] + [(None, m, f"{m:g} min") for m in minutes]
    real = load_dataset("faces")
    extractor = load_faces()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "acgan"
        start = time.perf_counter()
        for i, (budget_steps, budget_minutes, name) in enumerate(budgets):
            set_budget(cfg, budget_steps, budget_minutes)
            trainer = Trainer(cfg, run, resume=i > 0, data=real)
            trainer.run()
            row = {"budget": name, "steps": trainer.step, "seconds": round(trainer.elapsed, 1),
                   **score(run, real, extractor, args.n, args.seed)}
            rows.append(row)
            print(table(rows).splitlines()[-1] if i else table(rows), flush=True)
    result = {"budgets": rows, "target": TARGET, "generated_per_budget": args.n,
              "train": {k: getattr(cfg.train, k) for k in ("batch_size", "lr_g", "lr_d", "ema", "threads", "seed")},
              "model": {k: v for k, v in vars(cfg.model_cfg).items()},
              "extractor": extractor.fingerprint, "machine": cpu_description(), "torch": torch.__version__,
              "total_seconds": round(time.perf_counter() - start, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
