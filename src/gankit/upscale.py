"""``gankit upscale`` and the super-resolution side of ``gankit eval``.

``upscale_file`` reads any image, runs the run's SRResNet over it tile by tile
(``gankit.models.srgan.upscale``) and writes the result; ``--compare`` writes bicubic | SR
side by side, and with ``--from-hr`` the input is taken as the true high-resolution image:
it is shrunk first and the strip gains the truth (bicubic | SR | HR). ``sr_eval`` scores a run
on held-out photographs (PSNR/SSIM on Y beside bicubic, ``gankit.metrics.sr``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gankit.artifacts import load_generator, read_generator_meta, require_folder
from gankit.atomic import atomic_write_encoded, atomic_write_json, image_format, writable, writable_image
from gankit.data.images import SkippedImage
from gankit.data.base import signed
from gankit.data.photos import (bicubic_upscale, decode_native, downscale, modcrop, photo_set, recorded_held_out,
                                trained_and_held)
from gankit.device import resolve_device
from gankit.errors import GankitError
from gankit.metrics.sr import evaluate_sr, to_uint8
from gankit.config import TILE
from gankit.models.srgan import SRResNetGenerator, upscale

GAP = 4  # pixels between the images of a comparison strip


def load_upscaler(run_dir: str | Path, device: str = "auto") -> tuple[SRResNetGenerator, dict]:
    generator, meta = load_generator(Path(run_dir))
    if not isinstance(generator, SRResNetGenerator):
        raise GankitError(f"{run_dir} holds a {meta['family']} run, which generates rather than upscales; "
                          "upscale with a srresnet or srgan run.")
    return generator.to(resolve_device(device)), meta


def read_image(path: Path) -> torch.Tensor:
    """An image file as (1, 3, H, W) in [-1, 1], or a GankitError naming it."""
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "is not a regular file" if path.exists() else "does not exist"
        raise GankitError(f"{path} {state}; give the path of an image file.")
    try:
        pixels = decode_native(path)
    except SkippedImage as e:
        if e.reason == "above the pixel limit":
            raise GankitError(f"{path} is larger than Pillow's pixel limit; shrink it or split it first.") from None
        raise GankitError(f"{path} is not a readable image; give a PNG, JPEG or another format Pillow reads.") from None
    return signed(pixels).unsqueeze(0)


def side_by_side(images: list[torch.Tensor]) -> np.ndarray:
    """(1, 3, H, W) images of one height -> one uint8 strip with white gaps."""
    parts = []
    for image in images:
        parts += [to_uint8(image[0]), np.full((image.shape[2], GAP, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def comparison(generator: SRResNetGenerator, lr: torch.Tensor, hr: torch.Tensor | None = None,
               tile: int = TILE) -> tuple[torch.Tensor, np.ndarray]:
    """G's output for ``lr`` (1, 3, h, w) and the strip bicubic | SR (| HR when given)."""
    sr = upscale(generator, lr.to(next(generator.parameters()).device), tile)
    return sr, side_by_side([bicubic_upscale(lr, generator.scale), sr] + ([hr] if hr is not None else []))


def upscale_file(run_dir: str | Path, source: str | Path, out: str | Path | None = None, compare: bool = False,
                 from_hr: bool = False, tile: int = TILE, device: str = "auto") -> Path:
    """Write ``source`` upscaled by the run's generator to ``out`` (default: beside it, named
    after the scale, e.g. photo-x4.png); returns the path written."""
    generator, _ = load_upscaler(run_dir, device)
    s = generator.scale
    source = Path(source)
    if out is not None and Path(out).resolve() == source.resolve():
        raise GankitError(f"--out {out} is the image being upscaled, which writing it would replace; choose another "
                          "--out.")
    out = writable_image(out or source.with_name(f"{source.stem}-x{s}.png"), "--out")
    image = read_image(source)
    if from_hr:
        hr = modcrop(image, s)
        if min(hr.shape[-2:]) < s:
            raise GankitError(f"{source} is smaller than {s}x{s} pixels; --from-hr needs a larger image.")
        image = downscale(hr, s)
    sr, strip = comparison(generator, image, hr if from_hr else None, tile)
    pixels = strip if compare else to_uint8(sr[0])
    try:
        atomic_write_encoded(out, lambda f: Image.fromarray(pixels).save(f, format=image_format(out)))
    except (OSError, ValueError) as e:
        raise GankitError(f"Cannot write {out} ({e}); choose a writable path ending in .png or .jpg.") from None
    return out


def sr_eval(run_dir: str | Path, data: str | None = None, json_path: str | Path | None = None,
            device: str = "auto", tile: int = TILE) -> dict:
    """PSNR/SSIM (Y channel) of the run and of bicubic on the run's held-out photographs, or
    on every image of ``data`` (``folder:PATH``) when given."""
    if json_path:
        require_folder(Path(run_dir))  # before the JSON path's folder is made
        writable(json_path, "The JSON path")
    generator, meta = load_upscaler(run_dir, device)
    trained = meta.get("data_spec") or "photos"
    spec = data or trained
    held_out = meta.get("held_out")
    if data is None and held_out is not None:  # a folder run records its held-out images by name
        if not (isinstance(held_out, list) and held_out and all(isinstance(n, str) for n in held_out)):
            raise GankitError(f"{Path(run_dir) / 'generator.json'}'s held_out is not a list of file names; restore "
                              "the file as gankit wrote it.")
        photos = recorded_held_out(spec, held_out)
    else:
        photos = photo_set(spec, all_validation=data is not None).validation
    if not photos:
        raise GankitError(f"{spec} holds out no validation image (a folder of one image, or photos with an empty "
                          "held=); evaluate on another folder with --data folder:PATH.")
    device_of = next(generator.parameters()).device
    scores = evaluate_sr(lambda lr: upscale(generator, lr.to(device_of), tile), photos, generator.scale)
    result = {"run": str(run_dir), "family": meta["family"], "step": meta.get("step"), "data": spec,
              "split": split_name(trained, spec, data),
              "protocol": f"Y channel (BT.601), border {generator.scale} px shaved, 8-bit", **scores}
    if json_path:
        atomic_write_json(Path(json_path), result)
    return result


def split_name(trained: str, scored: str, data: str | None) -> str:
    """What the images of spec ``scored`` are to a run trained on spec ``trained``: --data
    folder:PATH scores every image; photos keep their held-out split, which may include
    photographs the run trained on."""
    if data and scored.startswith("folder"):
        return "all images"
    both = trained_and_held(trained, scored)
    return f"held out; {', '.join(both)} also trained" if both else "held out"


def format_sr_table(result: dict) -> str:
    header = f"{'image':<24} {'size':>10} {'bicubic PSNR':>13} {'SR PSNR':>8} {'bicubic SSIM':>13} {'SR SSIM':>8}"
    lines = [f"{result['family']} step {result['step']} on {result['data']} ({result['split']}); {result['protocol']}",
             header]
    rows = result["images"] + [{"image": "mean", "size": "", **result["mean"]}]
    for r in rows:
        lines.append(f"{r['image'][:24]:<24} {r['size']:>10} {r['bicubic_psnr']:>13.2f} {r['sr_psnr']:>8.2f} "
                     f"{r['bicubic_ssim']:>13.4f} {r['sr_ssim']:>8.4f}")
    m = result["mean"]
    lines.append(f"gain over bicubic: {m['psnr_gain']:+.2f} dB PSNR, {m['ssim_gain']:+.4f} SSIM")
    if result.get("skipped"):
        lines.append(f"left out, too small to score: {', '.join(result['skipped'])}")
    return "\n".join(lines)


def is_sr_run(run_dir: str | Path) -> bool:
    from gankit.models import get_family
    from gankit.models.srgan import SRGAN

    if not Path(run_dir).is_dir():
        return False  # the generic path names the missing folder
    meta = read_generator_meta(Path(run_dir), "pass the run folder that `gankit train` wrote.")
    return issubclass(get_family(meta["family"]), SRGAN)
