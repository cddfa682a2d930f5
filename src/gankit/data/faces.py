"""``faces``: the embedded face set, procedurally drawn cartoon faces labelled like ``anime``.

No face dataset can be downloaded here, so this draws one: each face has a hair colour (the
12 of ``anime``) and an eye colour (its 11) as labels, drawn uniformly and independently,
and nuisance variation the labels do not determine: face position, size and tilt, skin tone,
hair length, width and fringe, eye size and spacing, mouth, blush, clothes and background.
Faces are drawn with Pillow at 4x the size and reduced by box averaging (smooth edges);
the eyes are large anime eyes whose iris carries the eye colour, readable at 32x32.

``faces`` gives 20,000 faces at 3x32x32 (``faces:N`` gives N; data.image_size and
data.channels change the size and colour), the same for every run; they go through the
image cache, so only the first load draws them. ``export_faces`` writes them in the anime
layout (faces/<id>.png + tags.csv) so that ``anime:DIR`` reads the same images and labels.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from gankit.config import MAX_IMAGE_SIZE, DataConfig
from gankit.data.anime import EYES, HAIR
from gankit.data.base import DataInfo, TensorData, signed
from gankit.data.images import StoredImages, cache_key, cached_images
from gankit.data.registry import register
from gankit.errors import GankitError

DEFAULT_COUNT, DEFAULT_SIZE, SEED = 20_000, 32, 0
SUPERSAMPLE = 4
RENDERER_VERSION = 1  # part of the cache key: bump it when the drawing changes
RGB = tuple[int, int, int]
# Chosen far apart, so that aqua/blue, gray/white and orange/blonde/brown stay distinct.
HAIR_RGB: dict[str, RGB] = {
    "orange": (255, 125, 0), "white": (242, 242, 236), "aqua": (0, 212, 200), "gray": (122, 122, 128),
    "green": (30, 150, 40), "red": (200, 18, 24), "purple": (112, 38, 165), "pink": (255, 128, 190),
    "blue": (24, 58, 212), "black": (24, 22, 28), "brown": (104, 58, 24), "blonde": (250, 222, 100),
}
EYE_RGB: dict[str, RGB] = {
    "gray": (135, 135, 140), "black": (14, 14, 18), "orange": (255, 122, 0), "pink": (255, 102, 180),
    "yellow": (245, 216, 0), "aqua": (0, 216, 216), "purple": (124, 38, 192), "green": (18, 166, 48),
    "brown": (112, 62, 22), "red": (216, 14, 24), "blue": (18, 68, 236),
}
SKIN_RGB: tuple[RGB, ...] = ((255, 228, 206), (250, 213, 184), (236, 194, 158), (212, 164, 124),
                             (174, 122, 86), (124, 84, 58))
DARK: RGB = (34, 24, 28)
WHITE: RGB = (255, 255, 255)


@dataclass(frozen=True)
class Face:
    """Everything one drawing depends on; lengths are fractions of the image side."""

    hair: int  # label, index into HAIR
    eyes: int  # label, index into EYES
    hair_rgb: RGB
    iris_rgb: RGB
    skin_rgb: RGB
    clothes_rgb: RGB
    background_rgb: RGB
    cx: float  # face centre
    cy: float
    r: float  # half the face's width
    tilt: float  # degrees
    hair_length: float  # 0: chin length .. 1: past the shoulders
    hair_width: float  # back hair half-width, in units of r
    strands: int  # fringe strands
    fringe: float  # fringe depth, in units of r
    eye_size: float
    eye_gap: float  # eye centre to face centre, in units of r
    mouth_open: bool
    blush: bool


def shaded(rgb: RGB, factor: float) -> RGB:
    return tuple(int(min(255, max(0, round(c * factor)))) for c in rgb)


def mixed(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def hsv_rgb(h: float, s: float, v: float) -> RGB:
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v))


def face_labels(n: int, seed: int = SEED) -> np.ndarray:
    """(n, 2) int64 labels (hair, eyes): uniform and independent."""
    return np.random.default_rng(seed).integers((HAIR.num_classes, EYES.num_classes), size=(n, 2))


def describe_face(hair: int, eyes: int, seed: int, index: int) -> Face:
    """Face ``index`` of the set drawn with ``seed``: its labels plus its own nuisance draws."""
    v = np.random.default_rng([seed, index]).random(21).tolist()
    return Face(
        hair=hair, eyes=eyes,
        hair_rgb=shaded(HAIR_RGB[HAIR.values[hair]], 0.9 + 0.16 * v[0]),
        iris_rgb=shaded(EYE_RGB[EYES.values[eyes]], 0.94 + 0.1 * v[1]),
        skin_rgb=shaded(SKIN_RGB[int(v[2] * len(SKIN_RGB))], 0.96 + 0.08 * v[3]),
        clothes_rgb=hsv_rgb(v[4], 0.2 + 0.6 * v[5], 0.3 + 0.6 * v[6]),
        background_rgb=hsv_rgb(v[7], 0.05 + 0.4 * v[8], 0.55 + 0.43 * v[9]),
        cx=0.41 + 0.18 * v[10], cy=0.47 + 0.1 * v[11], r=0.22 + 0.08 * v[12],
        tilt=-10 + 20 * v[13], hair_length=v[14], hair_width=1.15 + 0.3 * v[15],
        strands=3 + int(4 * v[16]), fringe=0.25 + 0.2 * v[17],
        eye_size=0.92 + 0.2 * v[18], eye_gap=0.42 + 0.08 * v[19],
        mouth_open=v[20] > 0.6, blush=v[20] < 0.3,
    )


# --- drawing -----------------------------------------------------------------------------------
def render_face(face: Face, size: int) -> np.ndarray:
    """The face as uint8 (3, size, size)."""
    s = size * SUPERSAMPLE
    canvas = Image.new("RGB", (s, s), face.background_rgb)
    draw = ImageDraw.Draw(canvas)
    cx, cy, r = face.cx * s, face.cy * s, face.r * s
    draw_back_hair(draw, face, cx, cy, r, s)
    draw_body(draw, face, cx, cy, r)
    draw_head(draw, face, cx, cy, r)
    for side in (-1, 1):
        draw_eye(draw, face, cx + side * face.eye_gap * r, cy + 0.05 * r, r)
    draw_front_hair(draw, face, cx, cy, r)
    canvas = canvas.rotate(face.tilt, Image.Resampling.NEAREST, center=(cx, cy), fillcolor=face.background_rgb)
    return np.asarray(canvas.reduce(SUPERSAMPLE)).transpose(2, 0, 1)


def draw_back_hair(draw: ImageDraw.ImageDraw, face: Face, cx: float, cy: float, r: float, s: int) -> None:
    """The hair behind the head, from chin length to past the shoulders."""
    w = face.hair_width * r
    bottom = min(s, cy + r * (0.6 + 1.8 * face.hair_length))
    draw.ellipse((cx - w, cy - 1.2 * r, cx + w, cy + 0.8 * r), fill=face.hair_rgb)
    draw.rounded_rectangle((cx - w, cy - 0.2 * r, cx + w, bottom), radius=0.4 * r, fill=face.hair_rgb)


def draw_body(draw: ImageDraw.ImageDraw, face: Face, cx: float, cy: float, r: float) -> None:
    """Shoulders in clothes and the neck."""
    draw.ellipse((cx - 1.7 * r, cy + 1.45 * r, cx + 1.7 * r, cy + 3.2 * r), fill=face.clothes_rgb)
    draw.rectangle((cx - 0.28 * r, cy + 0.5 * r, cx + 0.28 * r, cy + 1.6 * r), fill=shaded(face.skin_rgb, 0.88))


def draw_head(draw: ImageDraw.ImageDraw, face: Face, cx: float, cy: float, r: float) -> None:
    """Face with a pointed anime chin, mouth and blush."""
    draw.ellipse((cx - r, cy - 1.05 * r, cx + r, cy + 0.75 * r), fill=face.skin_rgb)
    draw.polygon([(cx - 0.93 * r, cy + 0.15 * r), (cx, cy + 1.05 * r), (cx + 0.93 * r, cy + 0.15 * r)],
                 fill=face.skin_rgb)
    if face.blush:
        pink = mixed(face.skin_rgb, (240, 110, 130), 0.45)
        for side in (-1, 1):
            x = cx + side * 0.55 * r
            draw.ellipse((x - 0.2 * r, cy + 0.42 * r, x + 0.2 * r, cy + 0.55 * r), fill=pink)
    mouth_y = cy + 0.72 * r
    if face.mouth_open:
        draw.chord((cx - 0.15 * r, mouth_y - 0.12 * r, cx + 0.15 * r, mouth_y + 0.12 * r), 0, 180, fill=(150, 40, 50))
    else:
        draw.line((cx - 0.14 * r, mouth_y, cx + 0.14 * r, mouth_y), fill=shaded(face.skin_rgb, 0.55),
                  width=max(1, round(0.05 * r)))


def draw_eye(draw: ImageDraw.ImageDraw, face: Face, x: float, y: float, r: float) -> None:
    """A large eye: white, a coloured iris filling most of it, a darker pupil, a highlight, lashes."""
    w, h = 0.27 * r * face.eye_size, 0.36 * r * face.eye_size
    draw.ellipse((x - w, y - h, x + w, y + h), fill=WHITE)
    draw.ellipse((x - 0.82 * w, y - 0.7 * h, x + 0.82 * w, y + h), fill=face.iris_rgb)
    draw.ellipse((x - 0.34 * w, y - 0.1 * h, x + 0.34 * w, y + 0.55 * h), fill=shaded(face.iris_rgb, 0.45))
    draw.ellipse((x - 0.55 * w, y - 0.5 * h, x - 0.05 * w, y - 0.05 * h), fill=WHITE)
    draw.arc((x - 1.15 * w, y - 1.1 * h, x + 1.15 * w, y + 1.3 * h), 195, 345, fill=DARK,
             width=max(1, round(0.22 * h)))
    brow_y = y - 1.45 * h
    draw.line((x - 0.8 * w, brow_y, x + 0.8 * w, brow_y), fill=shaded(face.hair_rgb, 0.7),
              width=max(1, round(0.12 * h)))


def draw_front_hair(draw: ImageDraw.ImageDraw, face: Face, cx: float, cy: float, r: float) -> None:
    """The cap of hair, the fringe strands over the forehead and the side locks."""
    top = cy - 1.2 * r
    hairline = cy - 0.55 * r
    draw.chord((cx - 1.1 * r, top, cx + 1.1 * r, 2 * hairline - top), 180, 360, fill=face.hair_rgb)
    edges = np.linspace(cx - 1.05 * r, cx + 1.05 * r, face.strands + 1)
    for i, (left, right) in enumerate(zip(edges[:-1], edges[1:])):
        depth = face.fringe * r * (0.75 if i % 2 else 1.0)  # alternate lengths look like strands
        tip = (left + right) / 2 + (right - left) * 0.25 * (1 if i % 2 else -1)
        draw.polygon([(left, hairline - 0.1 * r), (right, hairline - 0.1 * r), (tip, hairline + depth)],
                     fill=face.hair_rgb)
    lock = cy + r * (0.2 + 0.5 * face.hair_length)
    for side in (-1, 1):
        outer, inner = cx + side * 1.1 * r, cx + side * 0.78 * r
        draw.polygon([(outer, hairline - 0.2 * r), (inner, hairline), (outer - side * 0.05 * r, lock)],
                     fill=face.hair_rgb)


# --- loading and export ------------------------------------------------------------------------
def rendered_faces(n: int, size: int, seed: int = SEED) -> StoredImages:
    """n faces as uint8 RGB (n, 3, size, size), drawn once and then read from the image cache."""
    labels = face_labels(n, seed).tolist()
    key = cache_key(source="faces", renderer=RENDERER_VERSION, n=n, size=size, seed=seed)
    return cached_images(key, n, (3, size, size),
                         lambda i: render_face(describe_face(*labels[i], seed, i), size))


def to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """RGB in [-1, 1] -> one luma channel (ITU-R 601, as Pillow's 'L')."""
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


MAX_COUNT = 1_000_000
MIN_EXPORT_SIZE = 8  # below it the eyes, one of the two labels, are a pixel or none


def is_faces_spec(data_spec: str) -> bool:
    """Whether ``data_spec`` names this built-in face set (faces, faces:500, ...)."""
    return data_spec.strip().split(":")[0].split(",")[0] == "faces"


def parse_count(argument: str | None) -> int:
    if not argument:
        return DEFAULT_COUNT
    text = argument.strip().replace("_", "")
    if not text.isdecimal() or int(text) < 1:
        raise GankitError(f"faces:{argument} must give a positive number of faces, e.g. faces:5000.")
    if int(text) > MAX_COUNT:  # each face is rendered, so a typo could otherwise run for hours
        raise GankitError(f"faces:{argument} asks for more than {MAX_COUNT:,} faces; use folder: data for more.")
    return int(text)


@register(
    "faces",
    summary="Embedded cartoon faces labelled 'hair' (12 colours) and 'eyes' (11), drawn procedurally; 20,000 at "
            "3x32x32.",
    usage="faces | faces:N  (N faces; data.image_size and data.channels change size and colour)",
)
def load_faces(argument: str | None, options: DataConfig) -> TensorData:
    n, size = parse_count(argument), options.image_size or DEFAULT_SIZE
    channels = options.channels or 3
    images = rendered_faces(n, size).to_tensor()
    if channels == 1:
        images = to_grayscale(signed(images))
    labels = torch.from_numpy(face_labels(n))
    spec = "faces" if argument is None else f"faces:{argument}"
    return TensorData(images, labels, DataInfo((channels, size, size), (HAIR, EYES)), spec)


def export_faces(directory: Path, n: int = DEFAULT_COUNT, image_size: int = DEFAULT_SIZE) -> Path:
    """Write n faces as ``directory/faces/<id>.png`` and ``directory/tags.csv`` ('id,blue hair red eyes')."""
    directory = Path(directory).expanduser()
    if n < 1:
        raise GankitError(f"--n {n} exports no face; give --n 1 or more.")
    if image_size < MIN_EXPORT_SIZE:
        raise GankitError(f"--size {image_size} is too small to draw a face's eyes; give --size {MIN_EXPORT_SIZE} or "
                          "more (the convolutional models train on 16 or more).")
    if n > MAX_COUNT:  # each face is rendered: a typo could run for hours
        raise GankitError(f"--n {n} asks for more than {MAX_COUNT:,} faces; export at most that many.")
    if image_size > MAX_IMAGE_SIZE:  # rendered in memory before anything is written
        raise GankitError(f"--size {image_size} is larger than {MAX_IMAGE_SIZE:,} pixels; export smaller faces.")
    if (directory / "tags.csv").exists():
        raise GankitError(f"{directory} already holds a tags.csv; export into a new or empty folder.")
    if (directory / "faces").is_dir() and any((directory / "faces").iterdir()):  # 0.png... would be replaced
        raise GankitError(f"{directory / 'faces'} already holds files, which the export would replace; export into a "
                          "new or empty folder.")
    stored, labels = rendered_faces(n, image_size), face_labels(n)
    try:
        (directory / "faces").mkdir(parents=True, exist_ok=True)
        for i, pixels in enumerate(stored.pixels):
            Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0))).save(directory / "faces" / f"{i}.png")
        rows = (f"{i},{HAIR.values[h]} hair {EYES.values[e]} eyes\n" for i, (h, e) in enumerate(labels.tolist()))
        (directory / "tags.csv").write_text("".join(rows))
    except OSError as e:
        raise GankitError(f"Cannot write the faces into {directory} ({e.strerror or e}); choose a writable "
                          "folder.") from None
    return directory
