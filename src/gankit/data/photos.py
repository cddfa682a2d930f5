"""High-resolution photographs for super-resolution, kept at their own resolution.

Super-resolution learns from pixels as they are, so nothing here is resized. Training images
are cut into overlapping square tiles (``TILE`` px, stride ``TILE // 2``) held as one tensor;
the SR family takes a random crop of each tile per step (``gankit.models.srgan``). Some images
are held out whole for validation (PSNR/SSIM against bicubic on full images, the SR protocol).

- ``photos``: the photographs bundled with installed dependencies, so nothing is downloaded:
  scikit-image's astronaut, coffee, immunohistochemistry slide and both views of its stereo
  motorcycle, scikit-learn's china and flower, matplotlib's grace_hopper, and scikit-image's
  grey camera, brick, grass, gravel, moon and coins (as RGB with three equal channels: more
  edges and textures for the luminance the metric scores). Each also trains at 0.7 and 0.5 of
  its size (anti-aliased), a common SR augmentation: a shrunk photo packs more detail per
  pixel. Each of the two, alone, raised the held-out gain after 5 minutes (benchmarks/sr.py)
  from +0.27 dB to +0.32 dB. Scikit-image's chelsea and rocket are held out.
  ``photos:train=A+B,held=C+D`` chooses either list among the 16 bundled names.
- ``folder:PATH`` (when an SR model reads it): every image under PATH at its own size; every
  tenth file (in sorted order, at least one) is held out. Unreadable files are skipped and
  counted in one note; images smaller than a tile give no training tile but can still be
  validation images.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from gankit.config import DataConfig
from gankit.data.base import DataInfo, TensorData, plural, refuse_repeated
from gankit.data.folder import dropped_summary, existing_folder
from gankit.data.images import IMAGE_EXTENSIONS, SkippedImage, image_files, opened_image, to_mode
from gankit.data.registry import register
from gankit.errors import GankitError

TILE = 128  # training tiles: room for random 96 px crops
MAX_TILES = 8000  # 8,000 x 3 x 128 x 128 float32 is 1.6 GB; more adds little to a CPU budget
# Not hubble_deep_field: its tiles are mostly black sky, a third of the steps spent on nothing.
TRAIN_PHOTOS = ("astronaut", "coffee", "immunohistochemistry", "motorcycle_left", "motorcycle_right",
                "china", "flower", "grace_hopper", "camera", "brick", "grass", "gravel", "moon", "coins")
TRAIN_RESCALES = (0.7, 0.5)  # the bundled photos also train at these sizes
VALIDATION_PHOTOS = ("chelsea", "rocket")
BUNDLED_PHOTOS = TRAIN_PHOTOS + VALIDATION_PHOTOS
VALIDATION_EVERY = 10  # folder:PATH holds out every tenth file


@dataclass
class Photo:
    name: str
    pixels: np.ndarray  # uint8 (3, H, W)


@dataclass
class PhotoSet:
    train: list[Photo]
    validation: list[Photo]
    notes: list[str] = field(default_factory=list)


def bundled_photo(name: str) -> Photo:
    """One photograph shipped inside an installed package: scikit-image's, scikit-learn's
    (china, flower) or matplotlib's (grace_hopper)."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        pixels = load_sample_image(f"{name}.jpg")
    elif name == "grace_hopper":
        import matplotlib.cbook

        with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
            pixels = np.asarray(im.convert("RGB"))
    else:
        try:
            import skimage.data
        except ImportError:
            raise GankitError("The photos dataset needs scikit-image; install it with `pip install scikit-image`, "
                              "or use folder:PATH with your own photographs.") from None
        if name.startswith("motorcycle_"):  # one stereo pair: (left, right, disparity)
            pixels = skimage.data.stereo_motorcycle()[0 if name.endswith("left") else 1]
        else:
            pixels = getattr(skimage.data, name)()
    if pixels.ndim == 2:  # a grey photograph
        pixels = np.stack([pixels] * 3, axis=-1)
    return Photo(name, np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def rescaled(photo: Photo, factor: float) -> Photo:
    """``photo`` resized by ``factor`` with Pillow's anti-aliased bicubic filter."""
    image = Image.fromarray(photo.pixels.transpose(1, 2, 0))
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    pixels = np.asarray(image.resize(size, Image.Resampling.BICUBIC)).transpose(2, 0, 1)
    return Photo(f"{photo.name}@{factor:g}", np.ascontiguousarray(pixels))


def decode_native(path: Path) -> np.ndarray:
    """``path`` as uint8 RGB (3, H, W) at its own size, upright as its EXIF orientation says
    (phone photos are stored sideways); SkippedImage says why it cannot be."""
    with opened_image(path) as im:
        return np.asarray(to_mode(ImageOps.exif_transpose(im), 3)).transpose(2, 0, 1).copy()


def folder_photos(root: Path, all_validation: bool = False) -> PhotoSet:
    """The images under ``root``: every tenth held out, or all of them for validation."""
    paths = image_files(root)
    if not paths:
        raise GankitError(f"{root} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                          "point folder: at a folder of photographs.")
    photos, skipped = [], Counter[str]()
    for path in paths:
        try:
            photos.append(Photo(str(path.relative_to(root)), decode_native(path)))
        except SkippedImage as e:
            skipped[e.reason] += 1
    if not photos:
        raise GankitError(f"None of the {len(paths)} image files under {root} could be decoded "
                          f"({dropped_summary(skipped)}); check that they are intact images.")
    summary = dropped_summary(skipped)
    notes = [f"folder:{root}: {plural(len(photos), 'image')}" + (f"; skipped {summary}." if summary else ".")]
    if all_validation:
        return PhotoSet([], photos, notes)
    held = set(range(0, len(photos), VALIDATION_EVERY)) if len(photos) > 1 else set()
    return PhotoSet([p for i, p in enumerate(photos) if i not in held],
                    [p for i, p in enumerate(photos) if i in held], notes)


def bundled_split(argument: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """'train=astronaut+camera,held=chelsea' -> the bundled photographs that train and those held
    out; a part not given keeps its default (TRAIN_PHOTOS, VALIDATION_PHOTOS). The choice lives in
    the data spec, so a run's config.json says what it trained on and ``gankit eval`` scores
    what it held out."""
    split = {"train": TRAIN_PHOTOS, "held": VALIDATION_PHOTOS}
    options = argument.split(",") if argument else []
    refuse_repeated("photos", options)
    for option in options:
        key, sep, value = (part.strip() for part in option.partition("="))
        if key not in split or not sep:
            raise GankitError(f"photos option {option!r} is unknown; the options are train= and held=, "
                              "e.g. photos:train=astronaut+camera,held=chelsea+rocket.")
        names = tuple(n.strip() for n in value.split("+") if n.strip())
        unknown = [n for n in names if n not in BUNDLED_PHOTOS]
        if unknown:
            raise GankitError(f"photos:{key}= names {', '.join(unknown)}, not a bundled photograph; "
                              f"choose among {', '.join(BUNDLED_PHOTOS)}.")
        if key == "train" and not names:
            raise GankitError("photos:train= lists no photograph; name at least one, e.g. photos:train=astronaut.")
        if len(set(names)) < len(names):
            raise GankitError(f"photos:{key}= names a photograph twice; list each once.")
        split[key] = names
    return split["train"], split["held"]


def trained_and_held(trained: str, scored: str | None = None) -> list[str]:
    """The bundled photographs a run trained on (data spec ``trained``) that are also held out for
    scoring (by ``scored``, default the same spec): allowed, for the best score a training set
    could give (benchmarks/sr.py), but then no longer a held-out score."""
    name, _, argument = trained.partition(":")
    scored_name, _, scored_argument = (scored or trained).partition(":")
    if name != "photos" or scored_name != "photos":
        return []
    train, held = bundled_split(argument)[0], bundled_split(scored_argument)[1]
    return [n for n in held if n in train]


def photo_set(spec: str, all_validation: bool = False) -> PhotoSet:
    """The photographs behind ``photos[:train=...,held=...]`` or ``folder:PATH``, split into
    training and validation."""
    name, _, argument = spec.partition(":")
    if name == "photos":
        train_names, held_names = bundled_split(argument)
        train = [bundled_photo(n) for n in train_names]
        train += [rescaled(photo, factor) for factor in TRAIN_RESCALES for photo in train]
        both = trained_and_held(spec)
        what = "also trains, so its score is not a held-out score" if len(both) == 1 \
            else "also train, so their scores are not held-out scores"
        notes = [f"{spec}: {', '.join(both)} {what}."] if both else []
        return PhotoSet(train, [bundled_photo(n) for n in held_names], notes)
    if name == "folder":
        return folder_photos(existing_folder(argument, "folder", "photographs"), all_validation)
    raise GankitError(f"Super-resolution reads photos or folder:PATH, not {spec!r}; "
                      "choose one of those (other datasets are resized and too small).")


def tiles(photos: list[Photo], tile: int = TILE) -> torch.Tensor:
    """Overlapping tile x tile squares of every photo (stride tile // 2) as uint8, at most MAX_TILES."""
    out: list[torch.Tensor] = []
    count = 0
    for photo in photos:
        image = torch.from_numpy(photo.pixels)
        if min(image.shape[1:]) < tile:
            continue
        squares = image.unfold(1, tile, tile // 2).unfold(2, tile, tile // 2)  # (3, rows, cols, tile, tile)
        squares = squares.permute(1, 2, 0, 3, 4).reshape(-1, 3, tile, tile)[:MAX_TILES - count]
        out.append(squares)
        count += len(squares)
        if count >= MAX_TILES:
            break
    if not out:
        largest = max((p.pixels.shape[2:0:-1] for p in photos), key=min, default=None)
        have = f"the largest of {plural(len(photos), 'training image')} is {largest[0]}x{largest[1]}" if largest \
            else "there is no training image"
        raise GankitError(f"No training image is at least {tile}x{tile} pixels ({have}); give larger photographs.")
    return torch.cat(out)


def recorded_held_out(spec: str, names: list[str]) -> list[Photo]:
    """The photographs of folder ``spec`` a run held out of training, by the names it recorded
    (``TensorData.held_out``). Its split is by position among the folder's files, which shifts when
    one is added or removed, so working it out again could score images the run trained on."""
    everything = {p.name: p for p in photo_set(spec, all_validation=True).validation}
    missing = [name for name in names if name not in everything]
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise GankitError(f"{spec} no longer holds {plural(len(missing), 'image')} the run held out of training "
                          f"({shown}); put them back, or score the images of a folder with --data folder:PATH.")
    return [everything[name] for name in names]


def load_tiles(spec: str, crop: int, tile: int = TILE) -> TensorData:
    """Training tiles of ``spec``'s photographs; ``info`` gives the HR crop the model sees."""
    photos = photo_set(spec)
    samples = tiles(photos.train, tile)
    notes = list(photos.notes)
    small = sum(min(p.pixels.shape[1:]) < tile for p in photos.train)
    if small:
        notes.append(f"{spec}: {plural(small, 'training image')} smaller than {tile}x{tile} gave no training tile.")
    if len(samples) == MAX_TILES:
        notes.append(f"{spec}: kept the first {MAX_TILES} training tiles.")
    held_out = tuple(p.name for p in photos.validation) if spec.startswith("folder") else ()
    return TensorData(samples, None, DataInfo((3, crop, crop)), spec, notes, held_out)


@register(
    "photos",
    summary="14 photos bundled with scikit-image, scikit-learn, matplotlib (super-resolution default).",
    usage="photos | photos:train=astronaut+camera,held=chelsea+rocket  "
          "(srresnet/srgan also read folder:PATH at full resolution)",
)
def load_photos(argument: str | None, options: DataConfig) -> TensorData:
    if options.image_size not in (0, TILE) or options.channels not in (0, 3):  # the tiles are cut, not resized
        raise GankitError(f"photos are 3x{TILE}x{TILE} tiles; drop data.image_size/data.channels or use folder: data.")
    return load_tiles(f"photos:{argument}" if argument else "photos", TILE, TILE)


# --- low resolution ------------------------------------------------------------------------------
def downscale(hr: torch.Tensor, factor: int) -> torch.Tensor:
    """The low-resolution input: anti-aliased bicubic downscaling of (N, C, H, W) by ``factor``
    (H and W multiples of it), as the SR literature (and MATLAB's imresize) makes it."""
    return F.interpolate(hr, scale_factor=1 / factor, mode="bicubic", antialias=True,
                         align_corners=False).clamp_(-1, 1)


def bicubic_upscale(lr: torch.Tensor, factor: int) -> torch.Tensor:
    """The baseline every SR result is measured against: plain bicubic upscaling."""
    return F.interpolate(lr, scale_factor=factor, mode="bicubic", align_corners=False).clamp_(-1, 1)


def modcrop(image: torch.Tensor, factor: int) -> torch.Tensor:
    """Crop (..., H, W) so both sides are multiples of ``factor`` (the SR protocol's first step)."""
    h, w = image.shape[-2:]
    return image[..., :h - h % factor, :w - w % factor]
