"""Super-resolution on the embedded photographs: PSNR/SSIM gain over bicubic per training budget.

Trains ``srresnet`` (each variant from scratch: gankit's defaults, and the paper's plain SRResNet
without the bicubic skip at lr 1e-4) and scores it on the held-out photographs
(chelsea, rocket; Y channel, 4 px border shaved) at each budget: the run is trained to the
first budget, scored, resumed to the next (resume is exact), and so on. Optionally continues
with ``srgan --init`` from the last SRResNet for a few more minutes (content loss from
--srgan-content: mse needs nothing, vgg54 needs the VGG19 weights file). Writes
benchmarks/results/sr.json.

    python benchmarks/sr.py                                  # 5, 10, 15 minutes, both variants
    python benchmarks/sr.py --budgets 15 --variants default --threads 1
    python benchmarks/sr.py --srgan-minutes 10 --srgan-content mse
    python benchmarks/sr.py --budgets 5 --variants default --photos half --out /tmp/half.json

``--photos`` asks whether the training photographs limit the held-out gain: ``half`` and
``quarter`` train on every second or fourth bundled photograph, ``with-validation`` adds the
held-out ones to the training set (the best a training set could be: the very photographs
that are scored). Each choice is a data spec (``photos:train=...``), so the runs' config.json
files record what they trained on.

``--folds K`` asks whether chelsea and rocket are typical: it splits all 16 bundled photographs
into K folds, trains one run per fold (the last budget) on the other folds and scores the fold
held out, so every photograph is scored once by a model that never saw it. The stereo pair
(motorcycle_left, motorcycle_right) is one scene and stays in one fold.

    python benchmarks/sr.py --folds 4 --budgets 15 --out benchmarks/results/sr_folds.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gankit.cli import main as gankit
from gankit.data import photos
from gankit.train.runtime import cpu_description
from gankit.upscale import sr_eval

RESULTS = Path(__file__).parent / "results" / "sr.json"
VARIANTS = {"default": [], "paper": ["--set", "model.bicubic_skip=false", "--lr", "1e-4"]}
PHOTO_SETS = {"all": photos.TRAIN_PHOTOS, "half": photos.TRAIN_PHOTOS[::2], "quarter": photos.TRAIN_PHOTOS[::4],
              "with-validation": photos.TRAIN_PHOTOS + photos.VALIDATION_PHOTOS}
PUBLISHED = {"SRResNet-MSE gain over bicubic, Set5 4x (Ledig et al. 2017, table 2)": 32.05 - 28.43}


def photos_spec(train: tuple[str, ...], held: tuple[str, ...] = photos.VALIDATION_PHOTOS) -> str:
    """The data spec that trains on ``train`` and holds out ``held`` (scored by sr_eval)."""
    return f"photos:train={'+'.join(train)},held={'+'.join(held)}"


def scenes() -> list[list[str]]:
    """The bundled photographs grouped by scene: the two views of the stereo motorcycle are one."""
    grouped: dict[str, list[str]] = {}
    for name in photos.BUNDLED_PHOTOS:
        grouped.setdefault(name.split("_")[0], []).append(name)
    return list(grouped.values())


def folds(k: int) -> list[tuple[str, ...]]:
    """All bundled photographs in ``k`` folds, dealt round-robin by scene."""
    ordered = scenes()
    return [tuple(name for scene in ordered[i::k] for name in scene) for i in range(k)]


def hold_out(held: tuple[str, ...]) -> str:
    """The data spec that trains on every bundled photograph but ``held``, and scores ``held``."""
    return photos_spec(tuple(name for name in photos.BUNDLED_PHOTOS if name not in held), held)


def cross_validate(k: int, minutes: float, common: list[str], root: Path) -> dict:
    """One run per fold of ``folds(k)``, each scored on its fold; every photograph's gain and their mean."""
    images, rows = [], []
    for i, held in enumerate(folds(k)):
        run, started = root / f"fold-{i}", time.perf_counter()
        train(["srresnet", "--out", str(run), "--data", hold_out(held), "--minutes", str(minutes), *common])
        result = sr_eval(run)
        rows.append({**scored(run, f"fold {i}", minutes, started, result), "held_out": list(held)})
        images += [{**image, "fold": i, "psnr_gain": round(image["sr_psnr"] - image["bicubic_psnr"], 4)}
                   for image in result["images"]]
    for image in sorted(images, key=lambda r: r["psnr_gain"]):
        print(f"{image['image']:<22} fold {image['fold']}  bicubic {image['bicubic_psnr']:6.2f}  "
              f"SR {image['sr_psnr']:6.2f}  gain {image['psnr_gain']:+.2f} dB")
    gains = [image["psnr_gain"] for image in images]
    summary = {"photographs": len(gains), "mean_psnr_gain": round(sum(gains) / len(gains), 4),
               "median_psnr_gain": round(statistics.median(gains), 4),
               "photographs_at_least_1_db": sum(g >= 1 for g in gains)}
    print(f"mean gain over {len(gains)} held-out photographs: {summary['mean_psnr_gain']:+.2f} dB "
          f"(median {summary['median_psnr_gain']:+.2f}; {summary['photographs_at_least_1_db']} at +1 dB or more)")
    return {"rows": rows, "images": images, "summary": summary}


def train(argv: list[str]) -> None:
    if gankit(["train", *argv, "--no-progress"]) != 0:
        raise SystemExit(f"training failed: {' '.join(argv)}")


def scored(run: Path, label: str, minutes: float, started: float, result: dict | None = None) -> dict:
    result = result or sr_eval(run)
    meta = json.loads((run / "generator.json").read_text())
    row = {"variant": label, "minutes": minutes, "steps": meta["step"], **result["mean"],
           "wall_s": round(time.perf_counter() - started, 1)}
    print(f"{label:<18} {minutes:>7.1f} {row['steps']:>6} {row['bicubic_psnr']:>9.2f} {row['sr_psnr']:>8.2f} "
          f"{row['psnr_gain']:>+7.2f} {row['bicubic_ssim']:>9.4f} {row['sr_ssim']:>8.4f}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="5,10,15", help="minutes at which to score (cumulative)")
    parser.add_argument("--variants", default="default,paper", help=f"among {', '.join(VARIANTS)}")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's choice)")
    parser.add_argument("--srgan-minutes", type=float, default=0, help="then srgan --init for this long")
    parser.add_argument("--srgan-content", default="mse", help="srgan's content loss: mse, vgg22 or vgg54")
    parser.add_argument("--photos", default="all", choices=list(PHOTO_SETS),
                        help="which bundled photographs train (the held-out ones are always scored)")
    parser.add_argument("--folds", type=int, default=0,
                        help="cross-validate over all bundled photographs in this many folds (last budget only)")
    parser.add_argument("--keep", help="keep the run folders under this folder")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON file to write")
    args = parser.parse_args()
    if args.folds and (args.photos != "all" or args.srgan_minutes):
        parser.error("--folds trains srresnet on all the other photographs; leave out --photos and --srgan-minutes")
    if args.folds and not 2 <= args.folds <= len(scenes()):
        parser.error(f"--folds must be between 2 and the number of scenes, {len(scenes())}, not {args.folds}")
    budgets = [float(b) for b in args.budgets.split(",")]
    data = ["--data", photos_spec(PHOTO_SETS[args.photos])]
    common = ["--set", f"train.threads={args.threads}", "--set", "train.seed=0"]

    rows, folded = [], {}
    print(f"{'variant':<18} {'minutes':>7} {'steps':>6} {'bicubic':>9} {'SR PSNR':>8} {'gain':>7} "
          f"{'bic SSIM':>9} {'SR SSIM':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        if args.folds:
            folded = cross_validate(args.folds, budgets[-1], common, root)
            rows = folded.pop("rows")
        for variant in ([] if args.folds else args.variants.split(",")):
            run, started = root / f"srresnet-{variant}", time.perf_counter()
            for i, minutes in enumerate(budgets):
                where = ["--resume", str(run)] if i else ["--out", str(run), *data, *VARIANTS[variant]]
                train(["srresnet", *where, "--minutes", str(minutes), *common])
                rows.append(scored(run, f"srresnet/{variant}", minutes, started))
        if args.srgan_minutes:
            variant = args.variants.split(",")[-1]
            run, started = root / "srgan", time.perf_counter()
            train(["srgan", "--out", str(run), *data, "--init", str(root / f"srresnet-{variant}"), *VARIANTS[variant],
                   "--minutes", str(args.srgan_minutes), "--set", f"model.content={args.srgan_content}", *common])
            rows.append(scored(run, f"srgan/{args.srgan_content}", args.srgan_minutes, started))
    result = {"rows": rows, "machine": cpu_description(), "torch": torch.__version__,
              "threads": args.threads or torch.get_num_threads(), "published": PUBLISHED,
              "training_photos": ("each fold trains on all the other bundled photographs" if args.folds
                                  else list(PHOTO_SETS[args.photos])),
              "protocol": ("each fold held out in turn" if args.folds else "held-out chelsea + rocket")
              + ", Y channel (BT.601), 4 px border shaved, 8-bit", **folded}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
