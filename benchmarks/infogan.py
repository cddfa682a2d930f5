"""InfoGAN on the embedded MNIST digits: does the categorical code become the digit class?

Trains ``infogan`` with its defaults (or the budget given), then reports the paper's two
figures after matching codes to classes with the Hungarian algorithm (gankit/probe.py):
code recovery (images generated per value of c1, read by the digits classifier) and Q's
unsupervised classification accuracy on the real labelled digits (the paper: about 5% error),
plus the linear probe of D's features with 100 and 1,000 labels next to the same probe on an
untrained D of the same architecture. Writes benchmarks/results/infogan.json.

    python benchmarks/infogan.py                     # the default budget (gankit train infogan)
    python benchmarks/infogan.py --minutes 5 --threads 2
    python benchmarks/infogan.py --budgets 1000,2000,4000   # one run, scored as it passes each step count
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


def train_run(run_dir: Path, args: argparse.Namespace, data, steps: int | None = None, resume: bool = False) -> dict:
    """Train infogan with its default settings and the given budget (``steps``, when given, in place
    of ``--steps`` and ``--minutes``; ``resume`` continues the run in ``run_dir``); the settings and speed."""
    family = get_family("infogan")
    cfg = RunConfig("infogan", family.default_config("mnist"))
    for key, value in family.default_train("mnist").items():
        set_value(cfg, f"train.{key}", value)
    budget = {"steps": steps or args.steps, "minutes": args.minutes, "batch_size": args.batch_size,
              "threads": args.threads, "seed": args.seed}
    if args.minutes and steps is None:
        budget["steps"] = 10**9  # the clock alone ends the run
    for key, value in budget.items():
        if value is not None:
            set_value(cfg, f"train.{key}", value)
    for assignment in args.set:
        set_value(cfg, *parse_set(assignment))
    cfg.train.progress = False
    validate(cfg)
    start = time.perf_counter()
    # not Trainer alone: train() also writes config.json, which the probe reads
    train(cfg, run_dir, resume=resume, data=data)
    seconds = time.perf_counter() - start
    steps = run_steps(run_dir)
    return {"train": {k: getattr(cfg.train, k) for k in ("batch_size", "lr_g", "lr_d", "ema", "precision", "threads",
                                                         "seed", "minutes")},
            "model": dict(vars(cfg.model_cfg)),
            "steps": steps, "seconds": round(seconds, 1),
            "images_per_s": round(steps * cfg.train.batch_size / seconds, 1)}


def scored_budgets(run: Path, args: argparse.Namespace, data) -> dict:
    """Train one run to each of ``--budgets`` in turn, scoring it at each; the last scores at the top."""
    budgets = sorted({int(b) for b in args.budgets.split(",")})
    rows, seconds = [], 0.0
    print(f"{'steps':>6} {'minutes':>7} {'code recovery':>13} {'Q accuracy':>10}")
    for i, steps in enumerate(budgets):
        result = train_run(run, args, data, steps, resume=i > 0)
        seconds += result["seconds"]
        rows.append({"steps": result["steps"], "minutes": round(seconds / 60, 1),
                     **infogan_scores(run, data, args.per_value)})
        print(f"{rows[-1]['steps']:>6} {rows[-1]['minutes']:>7} {rows[-1]['code_recovery']:>13.1%} "
              f"{rows[-1]['q_accuracy']:>10.1%}", flush=True)
    steps = rows[-1]["steps"]
    return {**result, **rows[-1], "seconds": round(seconds, 1), "budgets": rows,
            "images_per_s": round(steps * result["train"]["batch_size"] / seconds, 1)}


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
    parser.add_argument("--budgets", help="comma-separated step counts: one run, scored at each (code recovery "
                        "and Q accuracy; the probe at the last)")
    parser.add_argument("--per-value", type=int, default=500, help="generated images per value of c1")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting on top of the defaults, as `gankit train --set`")
    parser.add_argument("--keep", type=Path, help="train into this folder and keep it (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.budgets and (args.run or args.steps or args.minutes):
        parser.error("--budgets trains one run to each step count; leave out --run, --steps and --minutes")

    data = load_dataset("mnist")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else args.keep or Path(tmp) / "infogan"
        if args.budgets:
            result = scored_budgets(run, args, data)
        else:
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
