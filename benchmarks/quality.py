"""Sample quality at equal wall-clock training budgets: gankit against the plain loop.

Both train the same networks (gan and cgan of seeds 003 and 000) on the embedded MNIST digits
for 1, 2 and 5 minutes of training time; at each budget both generators are scored with the
same extractor (gankit's digits classifier): FID, KID, IS, precision, recall and, for cgan,
the accuracy of the requested digit. gankit runs with its defaults (EMA generator, bf16 where
the CPU has it, fused Adam, in-memory batches; cgan at batch 256 and lr 6e-4, its label embeddings
faster at first; gan at batch 128 and lr 6e-4, Adam betas 0 and 0.99, adaptive augmentation), one
run per budget (gan's learning rate falls over the budget's end); the plain loop is scored at
each mark of one run, in a fresh process (plain.py).
Scoring costs no training time on either side. ``--set train.seed=N`` seeds both loops.

    python benchmarks/quality.py [--models gan cgan] [--minutes 1 2 5] [--n 5000] [--loops gankit plain]
    python benchmarks/quality.py --models gan --loops gankit --set train.lr_decay=0.5 --out /tmp/try.json
    python benchmarks/quality.py --models gan --loops plain --minutes 5 --set train.seed=1 --out /tmp/s1.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).parent))
from plain import LATENT, in_fresh_process, plain_loop  # noqa: E402

import gankit  # noqa: E402
from gankit.config import RunConfig, parse_set, set_value  # noqa: E402
from gankit.data import DataInfo, load_dataset  # noqa: E402
from gankit.metrics import evaluate, load_extractor  # noqa: E402
from gankit.models import Generator, get_family  # noqa: E402
from gankit.pipeline import GeneratorPipeline  # noqa: E402
from gankit.train import train  # noqa: E402
from gankit.train.runtime import cpu_description  # noqa: E402

RESULTS = Path(__file__).parent / "results"
SCORES = ("fid", "kid_mean", "is_mean", "precision", "recall", "accuracy")


class PlainGenerator(Generator):
    """The plain loop's generator behind gankit's Generator interface, for scoring."""

    def __init__(self, model, info: DataInfo):
        super().__init__()
        self.model, self.info, self.latent_dim = model, info, LATENT

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.model.generate(z, None if labels is None else labels[:, 0])


def score(pipeline: GeneratorPipeline, real, extractor, n: int) -> dict:
    result = evaluate(pipeline, real, extractor, n, seed=0)
    return {k: result[k] for k in SCORES if k in result}


def gankit_scores(model: str, budgets: list[float], real, extractor, n: int,
                  overrides: tuple[str, ...] = ()) -> list[dict]:
    family = get_family(model)
    cfg = RunConfig(model, family.default_config("mnist"))
    for key, value in family.default_train("mnist").items():
        setattr(cfg.train, key, value)
    for assignment in overrides:
        set_value(cfg, *parse_set(assignment))
    cfg.train.steps, cfg.train.progress = 0, False
    rows = []
    for minutes in budgets:
        cfg.train.minutes = minutes
        with tempfile.TemporaryDirectory() as tmp:
            run = train(cfg, Path(tmp) / model, data=real)
            step = json.loads((run / "generator.json").read_text())["step"]
            rows.append({"minutes": minutes, "steps": step, **score(gankit.load(run), real, extractor, n)})
        print(f"  gankit {model} {minutes} min: {rows[-1]}", flush=True)
    return rows


def plain_scores(model: str, budgets: list[float], real, extractor, n: int, overrides: tuple[str, ...] = ()
                 ) -> list[dict]:
    """The plain loop's scores at each budget (one run, scored at each mark), in a fresh process.
    Its seed is the one ``--set train.seed=N`` gives gankit's runs (0 by default)."""
    seeds = [value for key, value in map(parse_set, overrides) if key == "train.seed"]
    return in_fresh_process(plain_scores_here, model, budgets, real, extractor, n, int(seeds[-1]) if seeds else 0)


def plain_scores_here(model: str, budgets: list[float], real, extractor, n: int, seed: int) -> list[dict]:
    info = real.info if model == "cgan" else DataInfo(real.info.shape)
    rows = []

    def at_mark(plain_model, seconds: float) -> None:
        generator = PlainGenerator(plain_model, info)
        plain_model.eval()
        pipeline = GeneratorPipeline(generator, {"family": model})
        rows.append({"minutes": seconds / 60, **score(pipeline, real, extractor, n)})
        plain_model.train()
        print(f"  plain  {model} {seconds / 60:g} min: {rows[-1]}", flush=True)

    marks = tuple(m * 60 for m in budgets)
    _, steps, _ = plain_loop(model, real.samples, real.labels[:, 0], 64, marks[-1], at_mark, marks, seed=seed)
    rows[-1]["steps"] = steps
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gan", "cgan"])
    parser.add_argument("--minutes", nargs="+", type=float, default=[1, 2, 5])
    parser.add_argument("--n", type=int, default=5000, help="generated samples per score")
    parser.add_argument("--loops", nargs="+", default=["gankit", "plain"], choices=["gankit", "plain"],
                        help="measure only these; the others' rows are kept from the last results file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for gankit's runs on top of its defaults, as `gankit train --set`; "
                             "train.seed also seeds the plain loop")
    parser.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    args = parser.parse_args()
    real, extractor = load_dataset("mnist"), load_extractor("digits")
    saved = args.out
    table = json.loads(saved.read_text())["results"] if saved.exists() else {}
    measure = {"gankit": gankit_scores, "plain": plain_scores}
    for model in args.models:
        table.setdefault(model, {})
        for loop in args.loops:
            # The load average before a loop runs shows whether other work shared the cores: timed
            # rows from a busy machine are not comparable, and rows are kept across runs.
            load = round(os.getloadavg()[0], 2)
            rows = measure[loop](model, args.minutes, real, extractor, args.n, tuple(args.set))
            table[model][loop] = [{**row, "load_before": load, "when": time.strftime("%Y-%m-%d %H:%M")}
                                  for row in rows]
    print(f"\n{'model':6s} {'min':>4s} {'loop':7s} " + " ".join(f"{k:>9s}" for k in SCORES))
    for model, loops in table.items():
        for i, minutes in enumerate(args.minutes):
            for loop in ("gankit", "plain"):
                if loop not in loops:
                    continue
                row = loops[loop][i]
                print(f"{model:6s} {minutes:4g} {loop:7s} " + " ".join(
                    f"{row[k]:9.4f}" if k in row else f"{'-':>9s}" for k in SCORES))
    machine = {"cpu": cpu_description(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "when": time.strftime("%Y-%m-%d")}
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({"machine": machine, "settings": args.set, "results": table}, indent=2) + "\n")
    print(f"wrote {saved}")


if __name__ == "__main__":
    main()
