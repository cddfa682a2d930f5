"""``anime:PATH``: anime faces labelled by hair and eye colour (seed 001's dataset layout).

PATH holds ``faces/<id>.jpg`` (any image extension) and ``tags.csv``, one row per image in
either format:

* ``0,blue hair:1<TAB>red eyes:1<TAB>long hair:1`` (the original tags_clean.csv: tag:count);
* ``0,blue hair red eyes`` (the cleaned tags.csv; a tag ends at each word 'hair' or 'eyes'),
  also with the tags separated by commas or tabs (``0,"smile, blue hair, red eyes"``).

Where spaces alone separate the tags, a colour is the run of colour words (and of 'light',
'dark', ...) just before 'hair' or 'eyes': in ``smile red hair`` the colour is red, in ``light
brown hair`` it is light brown.

A row is kept when it has exactly one hair colour tag and one eye colour tag of the reference
lists below ('grey' and 'blond' read as 'gray' and 'blonde'); other tags ('long hair',
'closed eyes', 'smile') are ignored. A row is dropped as *unknown* when it names a colour
outside the lists ('silver hair', 'light brown hair', 'yellow hair'), as *ambiguous* when it
has no or several hair (or eye) colours, as *bad* when it cannot be parsed, as a *duplicate*
when its id came before (the first row wins), and when its image is missing or cannot be
decoded. One note line gives every count.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gankit.config import DataConfig
from gankit.data.base import Attribute, DataInfo, TensorData, plural
from gankit.data.folder import (dropped_summary, existing_folder, image_settings, kept_note, text_lines,
                                unlisted_clause)
from gankit.data.images import IMAGE_EXTENSIONS, decode_files
from gankit.data.registry import register
from gankit.errors import GankitError

HAIR = Attribute("hair", ("orange", "white", "aqua", "gray", "green", "red", "purple", "pink", "blue",
                          "black", "brown", "blonde"))
EYES = Attribute("eyes", ("gray", "black", "orange", "pink", "yellow", "aqua", "purple", "green", "brown",
                          "red", "blue"))
ATTRIBUTES = {"hair": HAIR, "eyes": EYES}
# Colour words outside the reference lists, so that 'silver hair' is recognised as a colour
# (and the row dropped as unknown) while 'long hair' is just another tag.
OTHER_COLOURS = frozenset({"silver", "violet", "gold", "golden", "multicolored"})
SPELLINGS = {"grey": "gray", "blond": "blonde"}  # read as the reference lists spell them
COLOUR_WORDS = frozenset(HAIR.values) | frozenset(EYES.values) | OTHER_COLOURS | frozenset(SPELLINGS)
# Words that make another colour of the one they precede ('light brown' is not brown).
SHADES = frozenset({"light", "dark", "pale", "bright", "deep"})
TAG_SEPARATORS = re.compile(r"[\t,]")  # between tags where a copy has them (tabs or commas)
COUNTED_TAG = re.compile(r":\s*\d+\s*$")  # 'blue hair:1' marks the tag:count format
COUNTED_ITEM = re.compile(r"[^:]+?:\s*\d+")  # one 'tag:count' of a row whose separators are spaces
DEFAULT_SIZE = 64  # seed 001 trains on 64x64 faces


@dataclass(frozen=True)
class TaggedImage:
    id: str
    labels: tuple[int, int]  # (hair, eyes)


# --- tags.csv ----------------------------------------------------------------------------------
def split_tags(text: str) -> list[str]:
    """The tags of one row, lower case, in either format; ValueError for a malformed count."""
    # Quotes go wherever they are: around the whole list, or around each tag as csv.writer's
    # QUOTE_ALL writes them (0,"blue hair","red eyes"); no tag holds one.
    text = text.replace('"', "").strip().replace("_", " ").lower()
    if COUNTED_TAG.search(text) and not TAG_SEPARATORS.search(text):  # lost tabs: 'blue hair:1 red eyes:1'
        return [counted_tag(item) for item in COUNTED_ITEM.findall(text)]
    tags = []
    for item in TAG_SEPARATORS.split(text):
        tags += [counted_tag(item)] if ":" in item else plain_tags(item)
    return tags


def plain_tags(text: str) -> list[str]:
    """Tags separated by spaces alone: each ends at the word 'hair' or 'eyes'."""
    tags, words = [], []
    for word in text.split():
        words.append(word)
        if word in ATTRIBUTES:
            tags.append(" ".join(words))
            words = []
    return tags + ([" ".join(words)] if words else [])


def counted_tag(item: str) -> str:
    tag, sep, count = item.rpartition(":")
    if not sep or not count.strip().isdecimal() or not tag.strip():
        raise ValueError(f"{item!r} is not tag:count")
    return " ".join(tag.split())


def colour_tags(tags: list[str]) -> tuple[dict[str, set[str]], bool]:
    """({'hair': colours, 'eyes': colours} of the reference lists, whether an unknown colour appears)."""
    found: dict[str, set[str]] = {"hair": set(), "eyes": set()}
    unknown = False
    for tag in tags:
        *words, kind = tag.split()
        colour = colour_words(words)
        if kind not in ATTRIBUTES or not colour:
            continue
        colour = SPELLINGS.get(colour, colour)
        if colour in ATTRIBUTES[kind].values:
            found[kind].add(colour)
        elif colour.split()[-1] in COLOUR_WORDS:
            unknown = True
    return found, unknown


def colour_words(words: list[str]) -> str:
    """The colour a tag's words before 'hair'/'eyes' name: its trailing colour words and shades
    ('light brown' of 'light brown hair', 'red' of 'smile red hair'); '' when the last is none."""
    start = len(words)
    while start and (words[start - 1] in COLOUR_WORDS or start < len(words) and words[start - 1] in SHADES):
        start -= 1
    return " ".join(words[start:])


def valid_id(image_id: str) -> bool:
    """An id names a file in faces/, so it must be a plain file stem."""
    return bool(image_id) and image_id not in (".", "..") and not any(c in image_id for c in "/\\")


def read_tags(path: Path, files: dict[str, Path]) -> tuple[list[TaggedImage], Counter[str], set[str], str]:
    """The usable rows of tags.csv, how many rows went where, every id a row names, and the first row
    that could not be parsed (for the error when no row is usable); ``files`` (``image_paths``) lets a
    row that names its image file ('12.jpg') count as a duplicate of a row '12'."""
    lines = text_lines(path, "anime:PATH needs PATH/tags.csv next to PATH/faces/")
    rows: list[TaggedImage] = []
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    named: set[str] = set()
    numbered = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    if numbered and numbered[0][1].partition(",")[0].strip().strip('"').lower() == "id":  # a header row: 'id,tags'
        numbered = numbered[1:]
    if not numbered:
        raise GankitError(f"{path} holds no rows; give one row per image, e.g. '0,blue hair red eyes'.")
    first_bad = ""
    for number, line in numbered:
        outcome = classify_row(line, seen, named, files)
        if isinstance(outcome, TaggedImage):
            rows.append(outcome)
        else:
            counts[outcome] += 1
            first_bad = first_bad or (f"line {number} is {line.strip()[:60]!r}" if outcome == "bad" else "")
    counts["rows"] = len(rows) + sum(counts.values())
    return rows, counts, named, first_bad


def classify_row(line: str, seen: set[str], named: set[str], files: dict[str, Path]) -> TaggedImage | str:
    """A usable row, or the reason it is dropped. The id of every row that names one goes into
    ``named``; that of a row that parses into ``seen``, so that a later row for it is a duplicate
    (a malformed row does not shut out a good one)."""
    row_id, sep, text = line.partition(",")
    row_id = row_id.strip().strip('"')
    if not sep or not valid_id(row_id):
        return "bad"
    row_id = image_id(row_id, files)
    named.add(row_id)
    try:
        tags = split_tags(text)
    except ValueError:
        return "bad"
    if row_id in seen:
        return "duplicate"
    seen.add(row_id)
    found, unknown = colour_tags(tags)
    if unknown:
        return "unknown"
    if len(found["hair"]) != 1 or len(found["eyes"]) != 1:
        return "ambiguous"
    (hair,), (eyes,) = found["hair"], found["eyes"]
    return TaggedImage(row_id, (HAIR.index(hair), EYES.index(eyes)))


# --- images ------------------------------------------------------------------------------------
def image_paths(faces: Path) -> dict[str, Path]:
    """id -> image file in ``faces``, the first in name order when several share a stem."""
    paths: dict[str, Path] = {}
    for path in sorted(faces.iterdir()):
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            paths.setdefault(path.stem, path)
    return paths


def image_id(row_id: str, files: dict[str, Path]) -> str:
    """The id of a tags.csv row, also when the row names the file ('12.jpg' for faces/12.jpg)."""
    if row_id in files:
        return row_id
    stem, dot, suffix = row_id.rpartition(".")
    return stem if dot and f".{suffix.lower()}" in IMAGE_EXTENSIONS else row_id


def load_anime(root: Path, size: int, channels: int) -> TensorData:
    faces = root / "faces"
    if not faces.is_dir():
        raise GankitError(f"{root} has no faces/ folder; anime:PATH needs PATH/faces/<id>.jpg and PATH/tags.csv.")
    files = image_paths(faces)
    rows, counts, named, first_bad = read_tags(root / "tags.csv", files)
    with_image = [row for row in rows if row.id in files]
    counts["no image"] = len(rows) - len(with_image)
    stored = decode_files([files[row.id] for row in with_image], size, channels)
    counts["undecodable"] = len(with_image) - len(stored.kept)
    spec = f"anime:{root}"
    dropped = {"ambiguous (no or several hair/eye colours)": counts["ambiguous"],
               "with a colour outside the lists": counts["unknown"], "bad": counts["bad"],
               "with a duplicate id": counts["duplicate"], "without an image": counts["no image"],
               "with an undecodable image": counts["undecodable"]}
    if not len(stored.kept):
        example = f"; {first_bad}, where rows are 'id,tags'" if counts["bad"] == counts["rows"] else ""
        raise GankitError(f"{spec}: none of the {plural(counts['rows'], 'row')} of tags.csv is usable "
                          f"({dropped_summary(dropped)}{example}); check tags.csv and the names in faces/.")
    labels = np.array([with_image[i].labels for i in stored.kept], dtype=np.int64)
    note = (kept_note(spec, len(stored.kept), counts["rows"], "rows", dropped)
            + unlisted_clause(len(files.keys() - named), "faces", "tags.csv"))
    return TensorData(stored.to_tensor(), torch.from_numpy(labels),
                      DataInfo((channels, size, size), (HAIR, EYES)), spec, [note])


@register(
    "anime",
    summary="Anime faces with labels 'hair' (12 colours) and 'eyes' (11): PATH/faces/<id>.jpg + PATH/tags.csv; "
            "3x64x64.",
    usage="anime:PATH  (tags.csv rows 'id,blue hair red eyes' or 'id,blue hair:1<TAB>red eyes:1')",
    path="all",
)
def load_anime_source(argument: str | None, options: DataConfig) -> TensorData:
    root = existing_folder(argument, "anime", "faces/<id>.jpg and tags.csv")
    return load_anime(root, *image_settings(options, DEFAULT_SIZE))
