"""Mode coverage of the MLP GAN on toy:ring8 and toy:grid25 over losses, d-steps and stabilisers.

Each configuration trains ``gan`` with the toy defaults (``GAN.default_config`` and
``GAN.default_train``, what ``gankit train gan --data toy:...`` uses), once per seed, then counts
modes and high-quality samples on 2,500 samples of the sampling generator (metrics/modes.py:
a mode counts with >= 20 samples within 3 std). A stabiliser variant (``STABILISERS``) turns
EMA sampling off or on and adds spectral norm on D or PacGAN packing. Prints mean +- std over
seeds and writes benchmarks/results/modes.json, next to the published figures. The full grid
is 2 datasets x 4 losses x 3 d-steps x 6 stabiliser variants x 5 seeds; ``--losses``,
``--d-steps``, ``--stabilisers`` and ``--seeds`` run a part of it.

    python benchmarks/modes.py --data toy:ring8 --losses nonsaturating --d-steps 1 --seeds 2
    python benchmarks/modes.py --data toy:grid25 --stabilisers ema,ema+pack2 --append
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gankit.config import RunConfig, validate
from gankit.data.toy import toy_distribution
from gankit.metrics.modes import toy_metrics
from gankit.models.gan import GAN
from gankit.train import Trainer

RESULTS = Path(__file__).parent / "results" / "modes.json"
SAMPLES = 2500
# Stabiliser variants: model.* and train.* settings on top of the toy defaults (each sets all three,
# so a variant means the same whatever the defaults' own packing or spectral norm).
def _variant(ema: float, sn: bool = False, pack: int = 1) -> tuple[dict, dict]:
    return {"d_spectral_norm": sn, "pack": pack}, {"ema": ema}


STABILISERS: dict[str, tuple[dict, dict]] = {
    "none": _variant(0.0),
    "ema": _variant(0.999),
    "ema+sn": _variant(0.999, sn=True),
    "pack2": _variant(0.0, pack=2),
    "ema+pack2": _variant(0.999, pack=2),  # the toy defaults
    "ema+sn+pack2": _variant(0.999, sn=True, pack=2),
}

# VEEGAN (Srivastava et al. 2017) Table 1: 2,500 samples, mean of 5 runs, a mode counts from one
# high-quality sample; ring: radius 2, std 0.02 (grid std as in their code, not checked here).
# PacGAN (Lin et al. 2018) Table 1: grid means -4..4 step 2, std 0.05, 2,500 samples, 10 runs.
PUBLISHED = {
    "toy:ring8": {
        "GAN (VEEGAN Table 1)": {"modes": 1.0, "high_quality": 0.993},
        "ALI (VEEGAN Table 1)": {"modes": 2.8, "high_quality": 0.0013},
        "Unrolled GAN (VEEGAN Table 1)": {"modes": 7.6, "high_quality": 0.356},
        "VEEGAN (VEEGAN Table 1)": {"modes": 8.0, "high_quality": 0.529},
    },
    "toy:grid25": {
        "GAN (VEEGAN Table 1)": {"modes": 3.3, "high_quality": 0.005},
        "ALI (VEEGAN Table 1)": {"modes": 15.8, "high_quality": 0.016},
        "Unrolled GAN (VEEGAN Table 1)": {"modes": 23.6, "high_quality": 0.16},
        "VEEGAN (VEEGAN Table 1)": {"modes": 24.6, "high_quality": 0.40},
        "GAN (PacGAN Table 1)": {"modes": 17.3, "high_quality": 0.948},
        "PacGAN4 (PacGAN Table 1)": {"modes": 24.6, "high_quality": 0.942},
    },
}
PUBLISHED_NOTE = ("Quoted, not verified against the papers (no web access; the tables are images in the "
                  "authors' repositories): the mode counts are the widely cited ones; the high-quality "
                  "fractions, ALI's row and PacGAN's rows are less certain. Checked in akashgit/VEEGAN's "
                  "project page and fjxmlzn/PacGAN's code: 2,500 samples, high quality within 3 std of the "
                  "nearest mode, a mode captured from 1 such sample (this table: from 20).")


def run_once(spec: str, loss: str, d_steps: int, stabiliser: str, seed: int,
             steps: int | None) -> dict:
    """Train one configuration and measure it on SAMPLES generated points."""
    cfg = RunConfig("gan", GAN.default_config(spec))
    cfg.data.spec = spec
    train = GAN.default_train(spec)
    extra_model, extra_train = STABILISERS[stabiliser]
    for key, value in {**extra_model, "loss": loss}.items():
        setattr(cfg.model_cfg, key, value)
    settings = {**train, **extra_train, "d_steps": d_steps, "seed": seed, "threads": 1, "progress": False,
                "sample_every": 10**9, "checkpoint_every": 10**9, "log_every": 10**9}
    if steps:
        settings["steps"] = steps
    cfg.train = dataclasses.replace(cfg.train, **settings)
    validate(cfg)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, Path(run_dir))
        trainer.run()
        seconds = time.perf_counter() - start
        generator = trainer.sampling_generator.eval()
        with torch.no_grad():
            z = generator.sample_latent(SAMPLES, torch.Generator().manual_seed(10_000 + seed))
            fake = generator(z).numpy()
        real = trainer.data.samples[:SAMPLES].numpy()
    return {**toy_metrics(fake, real, toy_distribution(spec)), "seconds": round(seconds, 1)}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for key in ("modes", "high_quality", "seconds"):
        values = np.array([r[key] for r in runs], dtype=float)
        out[key] = {"mean": round(float(values.mean()), 3), "std": round(float(values.std()), 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", help="toy spec (repeatable); default ring8 and grid25")
    parser.add_argument("--losses", default="nonsaturating,minimax,lsgan,hinge")
    parser.add_argument("--d-steps", default="1,2,5")
    parser.add_argument("--stabilisers", default=",".join(STABILISERS), help=f"of {', '.join(STABILISERS)}")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from this one (to split a row)")
    parser.add_argument("--steps", type=int, default=0, help="training steps; 0 keeps the toy defaults'")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--append", action="store_true",
                        help="keep --out's other rows (a row measured again replaces its old one)")
    args = parser.parse_args()
    unknown = set(args.stabilisers.split(",")) - set(STABILISERS)
    if unknown:
        parser.error(f"unknown stabilisers {sorted(unknown)}; choose from {', '.join(STABILISERS)}")
    rows = []
    print(f"{'data':12s} {'loss':14s} {'k':>2s} {'stabiliser':13s} {'modes':>14s} {'high quality':>15s} {'s/run':>6s}")
    for spec in args.data or ["toy:ring8", "toy:grid25"]:
        for loss in args.losses.split(","):
            for d_steps in map(int, args.d_steps.split(",")):
                for stabiliser in args.stabilisers.split(","):
                    runs = [run_once(spec, loss, d_steps, stabiliser, seed, args.steps)
                            for seed in range(args.first_seed, args.first_seed + args.seeds)]
                    row = {"data": spec, "loss": loss, "d_steps": d_steps, "stabiliser": stabiliser,
                           "steps": args.steps or GAN.default_train(spec)["steps"], "runs": runs, **summarise(runs)}
                    rows.append(row)
                    m, q = row["modes"], row["high_quality"]
                    print(f"{spec:12s} {loss:14s} {d_steps:2d} {stabiliser:13s} {m['mean']:7.2f} +-{m['std']:5.2f}"
                          f" {q['mean']:7.1%} +-{q['std']:5.1%} {row['seconds']['mean']:6.1f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.append and args.out.exists():
        key = lambda row: (row["data"], row["loss"], row["d_steps"], row["stabiliser"], row["steps"])  # noqa: E731
        fresh = {key(row) for row in rows}
        rows = [row for row in json.loads(args.out.read_text())["rows"] if key(row) not in fresh] + rows
    settings = {spec: {"model": dataclasses.asdict(GAN.default_config(spec)), "train": GAN.default_train(spec)}
                for spec in sorted({row["data"] for row in rows})}
    report = {"settings": settings, "steps_override": args.steps, "samples": SAMPLES,
              "seeds": args.seeds, "stabilisers": {k: {"model": m, "train": t} for k, (m, t) in STABILISERS.items()},
              "rows": rows, "published": PUBLISHED, "published_note": PUBLISHED_NOTE}
    args.out.write_text(json.dumps(report, indent=2, default=list) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
