"""``celeba:PATH[,attrs=A+B+...]``: CelebA's aligned faces with the attributes the user picks.

PATH holds ``img_align_celeba/`` (the 178x218 aligned JPEGs, extracted), ``list_attr_celeba.txt``
(a count line, a line of the 40 attribute names, then ``000001.jpg -1 1 ...`` rows; or Kaggle's
comma-separated ``list_attr_celeba.csv``) and optionally ``identity_CelebA.txt`` (``000001.jpg
2880`` rows). Images get the standard 178x178 centre crop (the centre square, which the shared
decoder takes) and are resized to ``data.image_size`` (default 64).

``attrs`` lists the labels, one column each, in order:

* ``hair``: a categorical hair colour (black, blond, brown, gray) from Black_Hair, Blond_Hair,
  Brown_Hair and Gray_Hair; rows with none or several of these are dropped and counted;
* ``identity``: the person, one value per identity in identity_CelebA.txt;
* any of the 40 binary attributes (``Smiling``, ``Male``, case-insensitive): values no, yes.

Without ``attrs`` the images are unlabelled (for unconditional models and SRGAN).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gankit.config import DataConfig
from gankit.data.base import Attribute, DataInfo, TensorData, plural, refuse_repeated
from gankit.data.folder import (dropped_summary, existing_folder, image_settings, kept_note, text_lines,
                                unlisted_clause)
from gankit.data.images import IMAGE_EXTENSIONS, decode_files
from gankit.data.registry import register
from gankit.errors import GankitError

HAIR_COLUMNS = {"black": "Black_Hair", "blond": "Blond_Hair", "brown": "Brown_Hair", "gray": "Gray_Hair"}
BINARY = ("no", "yes")
IMAGES, ATTRIBUTES, IDENTITIES = "img_align_celeba", "list_attr_celeba.txt", "identity_CelebA.txt"
KAGGLE_ATTRIBUTES = "list_attr_celeba.csv"  # Kaggle's copy of the attribute file, comma-separated
VALUES = frozenset({"-1", "0", "1"})  # some copies write 0 for -1
MISSING = -1  # a label a row does not have; such rows are dropped
MISSING_REASONS = {"hair": "with no or several hair colours", "identity": "without an identity"}


@dataclass
class AttributeTable:
    """list_attr_celeba.txt: file names and their -1/1 values, one column per attribute name."""

    names: list[str]
    files: list[str]
    values: np.ndarray  # int8 (N, len(names)), 1 or -1
    bad_rows: int
    duplicate_rows: int  # rows naming a file an earlier row named (the first is kept)
    first_bad: str  # why the first bad row is bad, for the error when no row is usable
    named: set[str]  # the file of every row, bad ones too


def parse_argument(argument: str | None) -> tuple[str | None, list[str]]:
    """'PATH,attrs=hair+Smiling' -> ('PATH', ['hair', 'Smiling'])."""
    if not argument:
        return None, []
    path, *options = argument.split(",")
    refuse_repeated("celeba", options)
    attrs: list[str] = []
    for option in options:
        key, sep, value = option.partition("=")
        if key.strip() != "attrs":
            raise GankitError(f"celeba option {option!r} is unknown; the only option is attrs, "
                              "e.g. celeba:PATH,attrs=hair+Smiling+Male.")
        if not sep:
            raise GankitError(f"celeba option {option!r} needs its attributes after '=', "
                              "e.g. celeba:PATH,attrs=hair+Smiling+Male.")
        attrs = [a.strip() for a in value.split("+") if a.strip()]
    if len({a.lower() for a in attrs}) != len(attrs):
        raise GankitError(f"celeba attrs {'+'.join(attrs)} names an attribute twice; list each once.")
    return path, attrs


def read_attribute_table(path: Path) -> AttributeTable:
    """The attribute file as CelebA ships it (whitespace-separated, after a count line) or as
    Kaggle's copy has it (comma-separated, an image_id column first)."""
    lines = read_lines(path)
    first_line = 1  # the file's line number of lines[0], for messages
    if lines and lines[0].strip().isdecimal():
        lines, first_line = lines[1:], 2  # the image count line
    if not lines or not lines[0].strip():
        raise GankitError(f"{path} has no attribute names line; use CelebA's list_attr_celeba.txt.")
    fields_of = (lambda line: [f.strip() for f in line.split(",")]) if "," in lines[0] else str.split
    names = fields_of(lines[0])
    if len(names) > 1 and VALUES.issuperset(names[1:]):  # a row of values where the names belong
        raise GankitError(f"{path} has no attribute names line (line {first_line} holds the values of {names[0]}); "
                          "put the names line of CelebA's list_attr_celeba.txt before the first row.")
    if names[0].lower() == "image_id":  # Kaggle's header names the file column too
        names = names[1:]
    files, rows, bad, duplicates, first_bad = [], [], 0, 0, ""
    named: set[str] = set()
    seen: set[str] = set()  # the files of rows kept: a later row for one is a duplicate
    for number, line in enumerate(lines[1:], start=first_line + 1):
        if not line.strip():
            continue
        file, *fields = fields_of(line)
        named.add(file)
        if len(fields) != len(names) or not VALUES.issuperset(fields):  # the fast test; the reason only if needed
            bad += 1
            first_bad = first_bad or f"line {number} {row_problem(fields, len(names))}"
        elif file in seen:
            duplicates += 1
        else:
            seen.add(file)
            files.append(file)
            rows.append(fields)
    # One numpy parse of all the (checked) fields: several times faster than int() per field.
    table = np.fromstring(" ".join(" ".join(row) for row in rows), dtype=np.int8, sep=" ")
    table = table.reshape(len(rows), len(names))
    return AttributeTable(names, files, np.where(table == 1, 1, -1).astype(np.int8), bad, duplicates, first_bad,
                          named)


def row_problem(fields: list[str], attributes: int) -> str:
    """Why a row's values cannot be read."""
    if len(fields) != attributes:
        return f"has {plural(len(fields), 'value')} but the names line names {plural(attributes, 'attribute')}"
    odd = next(f for f in fields if f not in VALUES)
    return f"has the value {odd!r} (values are -1, 0 or 1)"


def read_identities(path: Path) -> dict[str, int]:
    if not path.exists():
        raise GankitError(f"attrs=identity needs {path}; put CelebA's identity_CelebA.txt there or drop identity.")
    identities = {}
    for line in read_lines(path):
        fields = line.split()  # a space or a tab
        if len(fields) == 2 and fields[1].isdecimal():
            identities[fields[0]] = int(fields[1])
    return identities


def read_lines(path: Path) -> list[str]:
    return text_lines(path, f"celeba:PATH needs PATH/{path.name} from CelebA")


def attribute_column(name: str, table: AttributeTable, root: Path) -> tuple[Attribute, np.ndarray]:
    """One requested attribute and its label per row (MISSING where the row has none)."""
    if name == "hair":
        hair = np.stack([table.values[:, column_index(table, c)] == 1 for c in HAIR_COLUMNS.values()], axis=1)
        labels = np.where(hair.sum(axis=1) == 1, hair.argmax(axis=1), MISSING)
        return Attribute("hair", tuple(HAIR_COLUMNS)), labels
    if name == "identity":
        identities = read_identities(root / IDENTITIES)
        people = sorted(set(identities.values()))
        label_of = {person: i for i, person in enumerate(people)}
        labels = np.array([label_of.get(identities.get(f, MISSING), MISSING) for f in table.files], dtype=np.int64)
        return Attribute("identity", tuple(str(p) for p in people)), labels
    i = column_index(table, name)
    return Attribute(table.names[i], BINARY), (table.values[:, i] == 1).astype(np.int64)


def column_index(table: AttributeTable, name: str) -> int:
    lowered = [n.lower() for n in table.names]
    if name.lower() not in lowered:
        raise GankitError(f"celeba has no attribute {name!r}; choose hair, identity or one of "
                          f"{', '.join(table.names)}.")
    return lowered.index(name.lower())


def attribute_file(root: Path) -> Path:
    """CelebA's list_attr_celeba.txt, or Kaggle's list_attr_celeba.csv where only that is there."""
    kaggle = root / KAGGLE_ATTRIBUTES
    return kaggle if not (root / ATTRIBUTES).exists() and kaggle.exists() else root / ATTRIBUTES


def load_celeba(root: Path, attrs: list[str], size: int, channels: int) -> TensorData:
    images = root / IMAGES
    if not images.is_dir():
        raise GankitError(f"{root} has no {IMAGES}/ folder; extract img_align_celeba.zip into {root}.")
    attributes_path = attribute_file(root)
    table = read_attribute_table(attributes_path)
    columns = [attribute_column(name, table, root) for name in attrs]
    dropped: Counter[str] = Counter({"bad": table.bad_rows, "with a duplicate file name": table.duplicate_rows})
    usable = np.ones(len(table.files), dtype=bool)
    for attribute, column in columns:  # each dropped row is counted once, under its first gap
        missing = usable & (column == MISSING)
        dropped[MISSING_REASONS.get(attribute.name, "")] += int(missing.sum())
        usable &= ~missing
    labelled = np.flatnonzero(usable)
    present = {p.name for p in images.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS}
    # A row takes the image of its own name, else the one of its stem: CelebA's PNG release holds
    # 000001.png where the attribute file names 000001.jpg.
    by_stem = {Path(name).stem: name for name in sorted(present)}
    image_of = {i: table.files[i] if table.files[i] in present else by_stem.get(Path(table.files[i]).stem)
                for i in labelled}
    named_stems = {Path(name).stem for name in table.named}
    unlisted = sum(name not in table.named and Path(name).stem not in named_stems for name in present)
    rows = [i for i in labelled if image_of[i] is not None]
    dropped["without an image"] = len(labelled) - len(rows)
    stored = decode_files([images / image_of[i] for i in rows], size, channels)
    dropped["undecodable"] = len(rows) - len(stored.kept)
    spec = f"celeba:{root}"
    total = len(table.files) + table.bad_rows + table.duplicate_rows
    if not len(stored.kept):
        if not total:
            raise GankitError(f"{attributes_path} holds no rows after its names line; use CelebA's "
                              "list_attr_celeba.txt.")
        first_bad = f"; {table.first_bad}" if table.bad_rows == total else ""
        raise GankitError(f"{spec}: none of the {plural(total, 'row')} of {attributes_path.name} is usable "
                          f"({dropped_summary(dropped)}{first_bad}); check the folder and attrs.")
    kept_rows = np.asarray(rows, dtype=np.int64)[stored.kept]
    y = torch.from_numpy(np.stack([c[kept_rows] for _, c in columns], axis=1)) if columns else None
    info = DataInfo((channels, size, size), tuple(a for a, _ in columns))
    note = (kept_note(spec, len(stored.kept), total, "rows", dropped)
            + unlisted_clause(unlisted, IMAGES, attributes_path.name))
    return TensorData(stored.to_tensor(), y, info, spec, [note])


@register(
    "celeba",
    summary="CelebA aligned faces, 3x64x64; labels chosen by attrs (hair colour, identity, any of the 40 binary "
            "attributes).",
    usage="celeba:PATH | celeba:PATH,attrs=hair+Smiling+Male  (PATH holds img_align_celeba/ and list_attr_celeba.txt)",
    path="first",
)
def load_celeba_source(argument: str | None, options: DataConfig) -> TensorData:
    path, attrs = parse_argument(argument)
    root = existing_folder(path, "celeba", f"{IMAGES}/ and {ATTRIBUTES}")
    return load_celeba(root, attrs, *image_settings(options))
