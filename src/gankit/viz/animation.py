"""An animated GIF from the PNG frames a run saved, written with Pillow."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PIL import Image

from gankit.atomic import atomic_write_encoded


def write_gif(frames: Sequence[Path], path: Path, ms_per_frame: int = 300) -> None:
    """Write ``frames`` (PNG files of one size, in order) as a looping GIF at ``path``."""
    if not frames:
        return
    images = []
    for frame in frames:
        with Image.open(frame) as image:
            # An adaptive palette per frame keeps the contour colours; GIF holds 256 at most.
            images.append(image.convert("RGB").quantize(256))
    atomic_write_encoded(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                                        duration=ms_per_frame, loop=0))
