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
that are scored). It replaces ``gankit.data.photos.TRAIN_PHOTOS`` in this process only.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from gankit.cli import main as gankit
from gankit.data import photos
from gankit.upscale import sr_eval

RESULTS = Path(__file__).parent / "results" / "sr.json"
VARIANTS = {"default": [], "paper": ["--set", "model.bicubic_skip=false", "--lr", "1e-4"]}
PHOTO_SETS = {"all": photos.TRAIN_PHOTOS, "half": photos.TRAIN_PHOTOS[::2], "quarter": photos.TRAIN_PHOTOS[::4],
              "with-validation": photos.TRAIN_PHOTOS + photos.VALIDATION_PHOTOS}
PUBLISHED = {"SRResNet-MSE gain over bicubic, Set5 4x (Ledig et al. 2017, table 2)": 32.05 - 28.43}


def use_photos(choice: str) -> None:
    """Train later runs of this process on ``PHOTO_SETS[choice]``; the held-out ones are scored either way."""
    photos.TRAIN_PHOTOS = PHOTO_SETS[choice]


def train(argv: list[str]) -> None:
    if gankit(["train", *argv, "--no-progress"]) != 0:
        raise SystemExit(f"training failed: {' '.join(argv)}")


def scored(run: Path, label: str, minutes: float, started: float) -> dict:
    result = sr_eval(run)
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
    parser.add_argument("--keep", help="keep the run folders under this folder")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON file to write")
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    use_photos(args.photos)
    common = ["--set", f"train.threads={args.threads}", "--set", "train.seed=0"]

    rows = []
    print(f"{'variant':<18} {'minutes':>7} {'steps':>6} {'bicubic':>9} {'SR PSNR':>8} {'gain':>7} "
          f"{'bic SSIM':>9} {'SR SSIM':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        for variant in args.variants.split(","):
            run, started = root / f"srresnet-{variant}", time.perf_counter()
            for i, minutes in enumerate(budgets):
                where = ["--resume", str(run)] if i else ["--out", str(run), *VARIANTS[variant]]
                train(["srresnet", *where, "--minutes", str(minutes), *common])
                rows.append(scored(run, f"srresnet/{variant}", minutes, started))
        if args.srgan_minutes:
            variant = args.variants.split(",")[-1]
            run, started = root / "srgan", time.perf_counter()
            train(["srgan", "--out", str(run), "--init", str(root / f"srresnet-{variant}"), *VARIANTS[variant],
                   "--minutes", str(args.srgan_minutes), "--set", f"model.content={args.srgan_content}", *common])
            rows.append(scored(run, f"srgan/{args.srgan_content}", args.srgan_minutes, started))
    result = {"rows": rows, "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
              "threads": args.threads or torch.get_num_threads(), "published": PUBLISHED,
              "training_photos": list(photos.TRAIN_PHOTOS),
              "protocol": "held-out chelsea + rocket, Y channel (BT.601), 4 px border shaved, 8-bit"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
