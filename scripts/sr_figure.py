"""docs/sr.png: part of a held-out photograph shrunk 4x, then bicubic | the run's SR | the original.

    python scripts/sr_figure.py RUN_DIR [--out docs/sr.png]

The part is scikit-image's chelsea (held out from `photos`), 160 px from (60, 150): an eye and fur.
The strip is what `gankit upscale RUN crop.png --compare --from-hr` writes, enlarged 2x by pixel
repetition so the difference is visible on a page.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data

from gankit.data.photos import downscale, signed
from gankit.upscale import comparison, load_upscaler

CROP = (60, 150, 160)  # top, left, side
ENLARGE = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a srresnet or srgan run folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "docs" / "sr.png")
    args = parser.parse_args()
    top, left, side = CROP
    hr = signed(data.chelsea()[top:top + side, left:left + side]).permute(2, 0, 1).unsqueeze(0)
    generator, _ = load_upscaler(args.run, "cpu")
    with torch.inference_mode():
        _, strip = comparison(generator, downscale(hr, generator.scale), hr)
    Image.fromarray(np.repeat(np.repeat(strip, ENLARGE, 0), ENLARGE, 1)).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
