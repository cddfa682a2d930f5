"""Super-resolution quality: PSNR and SSIM on the Y channel, the SR literature's protocol.

As in SRGAN's and most SR papers' evaluation code: both images are quantised to 8 bits,
converted to the Y channel of ITU-R BT.601 YCbCr (values 16-235, scikit-image's
``rgb2ycbcr``), ``scale`` pixels are shaved from each border, and PSNR (data range 255) and
SSIM (Gaussian window, sigma 1.5, as Wang et al. 2004) are computed by scikit-image. Every
score is reported beside bicubic upscaling of the same input, the baseline SR is judged by.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from torch import Tensor

from gankit.data.base import signed
from gankit.data.photos import Photo, bicubic_upscale, downscale, modcrop
from gankit.errors import GankitError

SSIM_SIGMA = 1.5  # Wang et al.'s Gaussian window
# The side of scikit-image's window for that sigma (11 pixels): smaller images cannot be scored.
SSIM_WINDOW = 2 * int(3.5 * SSIM_SIGMA + 0.5) + 1


def to_uint8(image: Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> uint8 (H, W, 3)."""
    return ((image.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> BT.601 Y in [16, 235] as float64."""
    from skimage.color import rgb2ycbcr

    return rgb2ycbcr(rgb)[..., 0]


def y_scores(sr: np.ndarray, hr: np.ndarray, shave: int) -> dict[str, float]:
    """PSNR (dB) and SSIM of uint8 RGB ``sr`` against ``hr`` on Y, ``shave`` border pixels left out."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if sr.shape != hr.shape:
        raise ValueError(f"images of shapes {sr.shape} and {hr.shape} cannot be compared")
    window = (slice(shave, -shave or None), slice(shave, -shave or None))
    a, b = luma(hr)[window], luma(sr)[window]
    with np.errstate(divide="ignore"):  # identical images: PSNR is infinite, which is right
        value = peak_signal_noise_ratio(a, b, data_range=255)
    return {"psnr": float(value),
            "ssim": float(structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=SSIM_SIGMA,
                                                use_sample_covariance=False))}


def evaluate_sr(upscale: Callable[[Tensor], Tensor], photos: list[Photo], scale: int) -> dict:
    """Scores of ``upscale`` (LR (1, 3, h, w) -> SR) and of bicubic on each photo, and their means.

    Each HR photo is cropped to a multiple of ``scale`` and shrunk by anti-aliased bicubic
    downscaling to make the input. Photos too small to score once the borders are shaved
    (under 2 * scale + SSIM_WINDOW pixels a side) are left out and listed under ``skipped``.
    """
    smallest = 2 * scale + SSIM_WINDOW
    # The side that counts is the one left after cropping to a multiple of the scale.
    skipped = [p.name for p in photos if min(side - side % scale for side in p.pixels.shape[1:]) < smallest]
    photos = [p for p in photos if p.name not in skipped]
    if not photos:
        raise GankitError(f"Every image to score ({', '.join(skipped)}) is smaller than {smallest}x{smallest} "
                          "pixels, too small for PSNR/SSIM after shaving the borders; evaluate on larger images.")
    rows = []
    for photo in photos:
        hr = modcrop(signed(photo.pixels), scale).unsqueeze(0)
        lr = downscale(hr, scale)
        truth = to_uint8(hr[0])
        row = {"image": photo.name, "size": f"{truth.shape[1]}x{truth.shape[0]}"}
        for method, output in (("bicubic", bicubic_upscale(lr, scale)), ("sr", upscale(lr))):
            for metric, value in y_scores(to_uint8(output[0]), truth, scale).items():
                row[f"{method}_{metric}"] = round(value, 4)
        rows.append(row)
    mean = {key: round(float(np.mean([r[key] for r in rows])), 4)
            for key in ("bicubic_psnr", "bicubic_ssim", "sr_psnr", "sr_ssim")}
    mean["psnr_gain"] = round(mean["sr_psnr"] - mean["bicubic_psnr"], 4)
    mean["ssim_gain"] = round(mean["sr_ssim"] - mean["bicubic_ssim"], 4)
    return {"images": rows, "mean": mean, **({"skipped": skipped} if skipped else {})}
