"""docs/sr.png: part of a held-out photograph shrunk 4x, then bicubic | the run's SR | the original.

    python scripts/sr_figure.py RUN_DIR [--out docs/sr.png]
    python scripts/sr_figure.py FOLD_RUN --photo astronaut --crop 40 170 160 --out docs/sr-astronaut.png

The part is by default scikit-image's chelsea (held out from `photos`), 160 px from (60, 150): an
eye and fur. ``--photo`` takes any bundled photograph (`gankit.data.photos`); pick one the run did
not train on, such as a photograph of the fold a `benchmarks/sr.py --folds` run held out.
The strip is what `gankit upscale RUN crop.png --compare --from-hr` writes, enlarged 2x by pixel
repetition so the difference is visible on a page.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gankit.data.base import signed
from gankit.data.photos import bundled_photo, downscale
from gankit.upscale import comparison, load_upscaler

CROP = (60, 150, 160)  # top, left, side of chelsea's eye
ENLARGE = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a srresnet or srgan run folder")
    parser.add_argument("--photo", default="chelsea", help="a bundled photograph the run did not train on")
    parser.add_argument("--crop", type=int, nargs=3, default=CROP, metavar=("TOP", "LEFT", "SIDE"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "docs" / "sr.png")
    args = parser.parse_args()
    top, left, side = args.crop
    pixels = bundled_photo(args.photo).pixels[:, top:top + side, left:left + side]  # uint8 (3, H, W)
    hr = signed(pixels).unsqueeze(0)
    generator, _ = load_upscaler(args.run, "cpu")
    with torch.inference_mode():
        _, strip = comparison(generator, downscale(hr, generator.scale), hr)
    Image.fromarray(np.repeat(np.repeat(strip, ENLARGE, 0), ENLARGE, 1)).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
