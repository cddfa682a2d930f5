"""``folder:PATH``: every image under a folder, unlabelled, for unconditional models.

Files are found recursively (symlinked folders followed once each), decoded once into the
image cache (see ``gankit.data.images``), resized and centre-cropped to ``data.image_size``
(default 64) with ``data.channels`` (default 3). Files that cannot be decoded are skipped
and counted in one note line.
"""

from __future__ import annotations

from pathlib import Path

from gankit.config import DataConfig
from gankit.data.base import DataInfo, TensorData, plural
from gankit.data.images import IMAGE_EXTENSIONS, decode_files, image_files
from gankit.data.registry import register
from gankit.errors import GankitError

DEFAULT_SIZE, DEFAULT_CHANNELS = 64, 3


def image_settings(options: DataConfig, default_size: int = DEFAULT_SIZE) -> tuple[int, int]:
    """(image size, channels) from the data settings, 0 meaning the source's default."""
    return options.image_size or default_size, options.channels or DEFAULT_CHANNELS


def existing_folder(path_text: str | None, source: str, hint: str) -> Path:
    """The folder a spec names, or a GankitError saying what ``source:PATH`` expects."""
    if not path_text:
        raise GankitError(f"{source} needs a folder: use {source}:PATH, where PATH holds {hint}.")
    path = Path(path_text).expanduser()
    if not path.is_dir():
        raise GankitError(f"{path} is not a folder; {source}:PATH needs a folder that holds {hint}.")
    return path


def text_lines(path: Path, missing: str) -> list[str]:
    """The lines of a UTF-8 text file that came with a dataset, or a GankitError: ``missing``
    says where the file belongs when it does not exist."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()  # -sig: Windows editors add a byte-order mark
    except FileNotFoundError:
        raise GankitError(f"{path} does not exist; {missing}.") from None
    except IsADirectoryError:  # not a text-decoding problem, as the sentence below would say
        raise GankitError(f"{path} is a folder, not a file; {missing}.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GankitError(f"{path} cannot be read as UTF-8 text ({e}); replace it with the dataset's own "
                          "copy.") from None


def dropped_summary(dropped: dict[str, int]) -> str:
    """'2 unreadable, 1 bad', naming the non-zero counts only."""
    return ", ".join(f"{n} {what}" for what, n in dropped.items() if n)


def kept_note(spec: str, kept: int, total: int, unit: str, dropped: dict[str, int]) -> str:
    """The one line a loader reports: what it kept and what it dropped, and why."""
    summary = dropped_summary(dropped)
    return f"{spec}: kept {kept} of {total} {unit}" + (f"; dropped {summary}." if summary else ".")


def unlisted_clause(count: int, folder: str, listing: str) -> str:
    """The note's clause for images left out because their label file has no row for them."""
    if not count:
        return ""
    return f" {plural(count, 'image')} in {folder}/ without a row in {listing} left out."


@register(
    "folder",
    summary="Every image under a folder (recursive), unlabelled; resized and centre-cropped, default 3x64x64.",
    usage="folder:PATH  (data.image_size, data.channels choose the size and RGB/grayscale)",
    path="all",
)
def load_folder(argument: str | None, options: DataConfig) -> TensorData:
    root = existing_folder(argument, "folder", "image files")
    paths = image_files(root)
    if not paths:
        raise GankitError(f"{root} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                          "point folder: at a folder of images.")
    size, channels = image_settings(options)
    stored = decode_files(paths, size, channels)
    if not len(stored.kept):
        raise GankitError(f"None of the {len(paths)} image files under {root} could be decoded "
                          f"({dropped_summary(stored.skipped)}); check that they are valid images.")
    spec = f"folder:{root}"
    notes = [kept_note(spec, len(stored.kept), len(paths), "image files", stored.skipped)] if stored.skipped else []
    return TensorData(stored.to_tensor(), None, DataInfo((channels, size, size)), spec, notes)
