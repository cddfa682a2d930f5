"""InfoGAN on the embedded MNIST digits: does the categorical code become the digit class?

Trains ``infogan`` with its defaults (or the budget given), then reports the paper's two
figures after matching codes to classes with the Hungarian algorithm (gankit/probe.py):
code recovery (images generated per value of c1, read by the digits classifier) and Q's
unsupervised classification accuracy on the real labelled digits (the paper: about 5% error),
plus the linear probe of D's features with 100 and 1,000 labels next to the same probe on an
untrained D of the same architecture. Writes benchmarks/results/infogan.json.

    python benchmarks/infogan.py                     # the default budget (gankit train infogan)
    python benchmarks/infogan.py --minutes 5 --threads 2
    python benchmarks/infogan.py --run runs/infogan-...   # score a finished run, no training
    python benchmarks/infogan.py --set model.lambda_cat=2 --keep /tmp/run --out /tmp/try.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from gankit.artifacts import read_json
from gankit.config import RunConfig, parse_set, set_value, validate
from gankit.data import load_dataset
from gankit.models import get_family
from gankit.probe import infogan_scores, probe
from gankit.train import train
from gankit.train.runtime import cpu_description

RESULTS = Path(__file__).parent / "results" / "infogan.json"
PUBLISHED = {"q_error (InfoGAN paper, section 7.1, full MNIST)": 0.05}


def train_run(run_dir: Path, args: argparse.Namespace, data) -> dict:
    """Train infogan with its default settings and the given budget; the settings and speed."""
    family = get_family("infogan")
    cfg = RunConfig("infogan", family.default_config("mnist"))
    for key, value in family.default_train("mnist").items():
        set_value(cfg, f"train.{key}", value)
    budget = {"steps": args.steps, "minutes": args.minutes, "batch_size": args.batch_size, "threads": args.threads,
              "seed": args.seed}
    if args.minutes:
        budget["steps"] = 10**9  # the clock alone ends the run
    for key, value in budget.items():
        if value is not None:
            set_value(cfg, f"train.{key}", value)
    for assignment in args.set:
        set_value(cfg, *parse_set(assignment))
    cfg.train.progress = False
    validate(cfg)
    start = time.perf_counter()
    train(cfg, run_dir, data=data)  # not Trainer alone: train() also writes config.json, which the probe reads
    seconds = time.perf_counter() - start
    steps = run_steps(run_dir)
    return {"train": {k: getattr(cfg.train, k) for k in ("batch_size", "lr_g", "lr_d", "ema", "precision", "threads",
                                                         "seed", "minutes")},
            "model": dict(vars(cfg.model_cfg)),
            "steps": steps, "seconds": round(seconds, 1),
            "images_per_s": round(steps * cfg.train.batch_size / seconds, 1)}


def run_steps(run_dir: Path) -> int:
    return read_json(run_dir / "generator.json", "pass a finished run.")["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="score this finished infogan run instead of training one")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--per-value", type=int, default=500, help="generated images per value of c1")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting on top of the defaults, as `gankit train --set`")
    parser.add_argument("--keep", type=Path, help="train into this folder and keep it (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    data = load_dataset("mnist")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else args.keep or Path(tmp) / "infogan"
        result = {"steps": run_steps(run)} if args.run else train_run(run, args, data)
        result.update(infogan_scores(run, data, args.per_value))
        result["probe"] = probe(run, data)
        family = get_family("infogan")
        untrained = family.build_discriminator(family.default_config("mnist"), data.info)
        result["probe_untrained_d"] = probe(untrained, data)
    result.update(settings=args.set, machine=cpu_description(), torch=torch.__version__,
                  published=PUBLISHED)
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
