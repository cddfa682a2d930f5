"""Image sources (folder, anime, celeba, faces) and the corpus of broken and hostile image inputs they must survive."""

from __future__ import annotations

import itertools
import os
import re
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data import images, load_dataset
from gankit.data.anime import EYES, HAIR, split_tags
from gankit.data.faces import EYE_RGB, HAIR_RGB, export_faces, face_labels
from gankit.errors import GankitError


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def save(path: Path, rgb=(200, 30, 30), size=(12, 12), mode="RGB", **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, rgb).save(path, **kwargs)
    return path


def load(spec: str, size: int = 8, channels: int = 0):
    return load_dataset(spec, DataConfig(spec, image_size=size, channels=channels))


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    decode = images.decode_image

    def counting(path, size, channels):
        calls.append(path)
        return decode(path, size, channels)

    monkeypatch.setattr(images, "decode_image", counting)
    return calls


# --- folder: a corpus of bad files --------------------------------------------------------------
def bad_corpus(root: Path) -> None:
    save(root / "good.jpg")
    save(root / "sub" / "gray.png", 90, mode="L")  # grayscale mixed with RGB
    jpeg = save(root / "truncated.jpg", size=(64, 64)).read_bytes()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("not an image at all")
    (root / "notes.txt").write_text("ignored: not an image extension")
    save(root / "cmyk.jpg", (0, 255, 255, 0), mode="CMYK")  # pure red in CMYK
    Image.fromarray(np.full((12, 12), 32896, dtype=np.uint16)).save(root / "sixteen.png")  # 16-bit mid-gray
    palette = Image.new("P", (12, 12), 0)
    palette.putpalette([0, 0, 0, 0, 0, 255])  # index 0 black (transparent), 1 blue
    palette.save(root / "palette.png", transparency=0)
    save(root / "bomb.png", size=(80, 80))  # above the lowered limit: Pillow would warn
    save(root / "bigger_bomb.png", size=(120, 120))  # above twice the limit: Pillow would raise
    os.symlink(root, root / "sub" / "loop")  # a folder that contains itself


def test_folder_skips_and_counts_bad_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad_corpus(tmp_path / "pics")
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 5000)
    data = load(f"folder:{tmp_path / 'pics'}", size=8)
    assert data.samples.shape == (5, 3, 8, 8) and data.labels is None
    assert data.samples.dtype == torch.float32 and data.samples.min() >= -1 and data.samples.max() <= 1
    assert data.notes == [f"folder:{tmp_path / 'pics'}: kept 5 of 10 image files; dropped "
                          "2 above the pixel limit, 3 unreadable."]
    by_name = dict(zip(["cmyk", "good", "palette", "sixteen", "gray"], (data.samples + 1) * 127.5))
    assert torch.allclose(by_name["cmyk"].mean((1, 2)), torch.tensor([255.0, 0, 0]), atol=3)
    assert torch.allclose(by_name["sixteen"].mean((1, 2)), torch.tensor([128.0] * 3), atol=1)  # scaled, not clipped
    assert torch.allclose(by_name["palette"].mean((1, 2)), torch.tensor([255.0] * 3), atol=1)  # alpha on white
    assert torch.allclose(by_name["gray"].mean((1, 2)), torch.tensor([90.0] * 3), atol=1)


def test_folder_reads_float_images_and_more_formats_and_skips_named_pipes(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    root.mkdir()
    Image.fromarray(np.full((12, 12), 0.5, np.float32)).save(root / "unit.tif")  # floats in [0, 1]
    Image.fromarray(np.full((12, 12), 200.0, np.float32)).save(root / "bytes.tif")  # floats in [0, 255]
    Image.fromarray(np.full((12, 12), np.nan, np.float32)).save(root / "nan.tif")
    save(root / "netpbm.ppm", (0, 0, 255))
    save(root / "photo.jfif", (0, 255, 0), format="JPEG")
    os.mkfifo(root / "pipe.png")  # reading it would wait for a writer forever
    data = load(f"folder:{root}", size=8)
    levels = dict(zip(["bytes", "netpbm", "photo", "unit"], ((data.samples + 1) * 127.5).mean((1, 2, 3))))
    assert levels["unit"] == pytest.approx(128, abs=1) and levels["bytes"] == pytest.approx(200, abs=1)
    assert levels["netpbm"] == pytest.approx(85, abs=1) and len(data.samples) == 4
    assert data.notes == [f"folder:{root}: kept 4 of 6 image files; dropped 1 unreadable, 1 not a regular file."]


def test_decoded_images_are_held_as_pixels_and_computed_ones_as_floats(tmp_path: Path) -> None:
    save(tmp_path / "pics" / "red.png", (255, 0, 51))
    folder = load(f"folder:{tmp_path / 'pics'}", size=8)
    assert folder.stored.dtype == torch.uint8 and folder.stored[0, :, 0, 0].tolist() == [255, 0, 51]
    assert folder.take(torch.tensor([0]))[0, :, 0, 0].tolist() == pytest.approx([1.0, -1.0, 51 / 127.5 - 1])
    faces = load("faces:4", size=16)
    assert faces.stored.dtype == torch.uint8
    grey = load("faces:4", size=16, channels=1)  # luma is computed in floats, between whole pixel values
    assert grey.stored.dtype == torch.float32 and grey.stored.shape == (4, 1, 16, 16)
    luma = (faces.samples * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    assert torch.allclose(grey.samples, luma)


def test_sixteen_bit_images_scale_by_257_to_eight(tmp_path: Path) -> None:
    """65535 / 257 = 255 exactly: 51400 (200 x 257) must decode to 200, not 201 (x / 256)."""
    Image.fromarray(np.full((8, 8), 51400, np.uint16)).save(tmp_path / "deep.png")
    data = load(f"folder:{tmp_path}", size=8, channels=1)
    assert data.stored.unique().tolist() == [200]


def test_upper_case_extensions_are_images_too(tmp_path: Path) -> None:
    save(tmp_path / "A.JPG", format="JPEG")
    save(tmp_path / "b.Png")
    assert len(load(f"folder:{tmp_path}")) == 2


def test_faces_of_another_count_are_another_cache_entry() -> None:
    four, eight = load("faces:4", size=16), load("faces:8", size=16)
    assert len(eight) == 8 and torch.equal(eight.stored[:4], four.stored)


def test_folder_grayscale_resizes_and_centre_crops(tmp_path: Path) -> None:
    picture = np.zeros((20, 40, 3), np.uint8)
    picture[:, 10:30] = 255  # a white centre square between black side bands
    Image.fromarray(picture).save(tmp_path / "wide.png")
    data = load(f"folder:{tmp_path}", size=10, channels=1)
    assert data.samples.shape == (1, 1, 10, 10)
    assert torch.allclose(data.samples, torch.ones(1, 1, 10, 10))  # the side bands were cropped away


def test_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match="holds no image files"):
        load(f"folder:{tmp_path / 'empty'}")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(GankitError, match="None of the 1 image files"):
        load(f"folder:{tmp_path / 'bad'}")
    with pytest.raises(GankitError, match="is not a folder"):
        load(f"folder:{tmp_path / 'missing'}")
    with pytest.raises(GankitError, match="needs a folder"):
        load("folder")


def test_a_cache_entry_another_process_completed_meanwhile_is_kept(tmp_path: Path) -> None:
    """Two ranks on one machine decode the same folder at once: the second to finish keeps the
    first's entry instead of deleting it under a reader."""
    folder, shape = tmp_path / "entry", (1, 2, 2)
    images.build_cache(folder, 2, shape, lambda i: np.full(shape, 7, np.uint8))
    images.build_cache(folder, 2, shape, lambda i: np.full(shape, 9, np.uint8))
    assert np.asarray(images.read_cache(folder, shape).pixels).max() == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]  # no temporary folder left
    (folder / "pixels.u8").write_bytes(b"")  # an incomplete entry is built again
    images.build_cache(folder, 2, shape, lambda i: np.full(shape, 9, np.uint8))
    assert np.asarray(images.read_cache(folder, shape).pixels).max() == 9


def test_cache_decodes_once_and_notices_changed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      cache_dir: Path) -> None:
    for i in range(3):
        save(tmp_path / "pics" / f"{i}.png", (i * 80, 0, 0))
    calls = count_decodes(monkeypatch)
    first = load(f"folder:{tmp_path / 'pics'}")
    assert len(calls) == 3
    second = load(f"folder:{tmp_path / 'pics'}")
    assert len(calls) == 3 and torch.equal(first.samples, second.samples)
    assert len(list(cache_dir.iterdir())) == 1 and not list(cache_dir.glob(".building-*"))
    save(tmp_path / "pics" / "1.png", (0, 0, 255))
    os.utime(tmp_path / "pics" / "1.png", ns=(1, 1))  # a different mtime, whatever the clock
    third = load(f"folder:{tmp_path / 'pics'}")
    assert len(calls) == 6 and third.samples[1, 2].mean() > 0.9  # the new blue picture
    load(f"folder:{tmp_path / 'pics'}", size=4)
    assert len(calls) == 9  # another size is another entry
    # Same size, other content: only the time tells (a raw PPM of one colour is as long as of another).
    ppm = tmp_path / "pics" / "0.ppm"
    ppm.write_bytes(b"P6 4 4 255\n" + bytes([255, 0, 0]) * 16)
    os.utime(ppm, ns=(1, 1))
    load(f"folder:{tmp_path / 'pics'}", size=4)
    ppm.write_bytes(b"P6 4 4 255\n" + bytes([0, 0, 255]) * 16)
    os.utime(ppm, ns=(2, 2))
    blue = load(f"folder:{tmp_path / 'pics'}", size=4)
    assert blue.stored[1, :, 0, 0].tolist() == [0, 0, 255]  # after 0.png


def test_a_file_replaced_under_its_old_mtime_is_decoded_again(tmp_path: Path, cache_dir: Path) -> None:
    # cp -p, rsync -t and unzip give a new file the source's mtime; a raw PPM of one colour is as long as another's
    ppm = tmp_path / "pics" / "0.ppm"
    ppm.parent.mkdir()
    ppm.write_bytes(b"P6 4 4 255\n" + bytes([255, 0, 0]) * 16)
    os.utime(ppm, ns=(5, 5))
    assert load(f"folder:{ppm.parent}", size=4).stored[0, :, 0, 0].tolist() == [255, 0, 0]
    time.sleep(0.05)  # past the clock tick of the file system's change time
    ppm.write_bytes(b"P6 4 4 255\n" + bytes([0, 0, 255]) * 16)
    os.utime(ppm, ns=(5, 5))
    assert load(f"folder:{ppm.parent}", size=4).stored[0, :, 0, 0].tolist() == [0, 0, 255]  # not the cached red


# --- anime --------------------------------------------------------------------------------------
def anime_folder(root: Path, rows: list[str], ids: list[str]) -> Path:
    for i, image_id in enumerate(ids):
        save(root / "faces" / f"{image_id}.jpg", (i * 20, 100, 0))
    (root / "tags.csv").write_text("\n".join(rows) + "\n")
    return root


def test_split_tags_reads_both_formats() -> None:
    assert split_tags("blue hair:1\tred eyes:3\tlong hair:2") == ["blue hair", "red eyes", "long hair"]
    assert split_tags("long hair blue hair red eyes smile") == ["long hair", "blue hair", "red eyes", "smile"]
    assert split_tags("blonde_hair:1") == ["blonde hair"]
    assert split_tags('"Blue hair, red eyes"') == ["blue hair", "red eyes"]
    assert split_tags("blue hair:1 red eyes:12 long hair:3") == ["blue hair", "red eyes", "long hair"]  # no tabs
    assert split_tags('"smile, red hair, blue eyes"') == ["smile", "red hair", "blue eyes"]
    assert split_tags("red hair\tblue eyes") == ["red hair", "blue eyes"]  # tabs without counts
    assert split_tags('"blue hair","red eyes"') == ["blue hair", "red eyes"]  # csv.writer's QUOTE_ALL
    with pytest.raises(ValueError):
        split_tags("blue hair:many\tred eyes:1")


@pytest.mark.parametrize("row, hair, eyes", [
    ("smile red hair blue eyes", "red", "blue"),  # another tag before the colour, spaces alone
    ("open mouth green hair red eyes", "green", "red"),
    ('"hat, blonde hair, aqua eyes"', "blonde", "aqua"),
    ('"hat","blonde hair","aqua eyes"', "blonde", "aqua"),  # each tag quoted (csv.writer's QUOTE_ALL)
    ("pink hair\tgreen eyes", "pink", "green"),
    ("blond hair grey eyes", "blonde", "gray"),  # other spellings, read as the lists spell them
])
def test_anime_colours_follow_other_tags(tmp_path: Path, row: str, hair: str, eyes: str) -> None:
    root = anime_folder(tmp_path / "anime", [f"0,{row}", "1,light brown hair blue eyes", "2,dark hair red eyes"],
                        ["0", "1", "2"])
    data = load(f"anime:{root}")
    assert data.labels.tolist() == [[HAIR.index(hair), EYES.index(eyes)]]
    assert "1 ambiguous" in data.notes[0] and "1 with a colour outside the lists" in data.notes[0]


def test_anime_counted_tags_keep_and_drop(tmp_path: Path) -> None:
    rows = ["0,blue hair:1\tred eyes:1\tlong hair:5",  # kept: long hair is no colour
            "1,aqua hair:1\tgray eyes:2\tclosed eyes:1\thair between eyes:1",  # kept
            "2,blue hair:1\tred hair:1\tgreen eyes:1",  # ambiguous: two hair colours
            "3,long hair:1\tred eyes:1",  # ambiguous: no hair colour
            "4,silver hair:1\tblue eyes:1",  # unknown colour
            "5,blue hair:x\tred eyes:1",  # bad count
            "no comma at all",  # bad
            "0,green hair:1\tgreen eyes:1",  # duplicate id
            "6,pink hair:1\tyellow eyes:1"]  # no image
    root = anime_folder(tmp_path / "anime", rows, ["0", "1", "2", "3", "4", "5"])
    data = load(f"anime:{root}")
    assert data.labels.tolist() == [[HAIR.index("blue"), EYES.index("red")], [HAIR.index("aqua"), EYES.index("gray")]]
    assert data.info.attributes == (HAIR, EYES) and data.samples.shape == (2, 3, 8, 8)
    assert data.notes == [f"anime:{root}: kept 2 of 9 rows; dropped 2 ambiguous (no or several hair/eye "
                          "colours), 1 with a colour outside the lists, 2 bad, 1 with a duplicate id, 1 without an "
                          "image."]
    save(root / "faces" / "7.png")
    save(root / "faces" / "8.png")
    assert load(f"anime:{root}").notes[0].endswith(" 2 images in faces/ without a row in tags.csv left out.")


def test_anime_labels_stay_with_their_images_when_earlier_rows_are_dropped(tmp_path: Path) -> None:
    rows = ["9,pink hair green eyes",  # no image: dropped before the kept rows
            "0,blue hair red eyes", "2,white hair black eyes", "1,aqua hair gray eyes"]
    root = anime_folder(tmp_path / "anime", rows, ["0", "1", "2"])
    (root / "faces" / "2.jpg").write_bytes(b"garbage")  # undecodable, between the kept ones
    data = load(f"anime:{root}")
    assert data.labels.tolist() == [[HAIR.index("blue"), EYES.index("red")], [HAIR.index("aqua"), EYES.index("gray")]]
    red = (data.samples[:, 0].mean((1, 2)) + 1) * 127.5  # anime_folder paints image i with red = 20 i
    assert red.tolist() == pytest.approx([0, 20], abs=3)


def test_anime_plain_tags_and_unreadable_image(tmp_path: Path) -> None:
    rows = ["10,blonde hair purple eyes", "11,black hair long hair brown eyes", "12,white hair yellow eyes",
            "13,light brown hair blue eyes", "14,blue hair red eyes", "15,grey hair blue eyes",
            "16,blue hair light grey hair red eyes"]  # 'grey' is a colour word in any spelling: not plain blue
    root = anime_folder(tmp_path / "anime", rows, ["10", "11", "12", "13", "15", "16"])
    (root / "faces" / "14.jpg").write_bytes(b"garbage")
    data = load(f"anime:{root}")
    assert data.labels.tolist() == [[HAIR.index("blonde"), EYES.index("purple")],
                                    [HAIR.index("black"), EYES.index("brown")],
                                    [HAIR.index("white"), EYES.index("yellow")],
                                    [HAIR.index("gray"), EYES.index("blue")]]  # 'grey' spelt as the list
    assert data.notes == [f"anime:{root}: kept 4 of 7 rows; dropped 2 with a colour outside the lists, "
                          "1 with an undecodable image."]


def test_a_tags_folder_is_named_as_a_folder(tmp_path: Path) -> None:
    """A folder named tags.csv was said to be 'cannot be read as UTF-8 text ([Errno 21] Is a directory ...)'."""
    root = anime_folder(tmp_path / "anime", [], ["0"])
    (root / "tags.csv").unlink()
    (root / "tags.csv").mkdir()
    with pytest.raises(GankitError) as caught:
        load(f"anime:{root}")
    assert str(caught.value) == (f"{root / 'tags.csv'} is a folder, not a file; anime:PATH needs PATH/tags.csv "
                                 "next to PATH/faces/.")


def test_anime_rows_may_name_the_image_file(tmp_path: Path) -> None:
    root = anime_folder(tmp_path / "anime", ["20.jpg,blue hair red eyes", "21.JPG,pink hair green eyes"], ["20", "21"])
    data = load(f"anime:{root}")
    assert data.labels.tolist() == [[HAIR.index("blue"), EYES.index("red")], [HAIR.index("pink"), EYES.index("green")]]
    # '20' and '20.jpg' name one image: the second row is a duplicate, not a second copy of it
    root = anime_folder(tmp_path / "twice", ["20,blue hair red eyes", "20.jpg,pink hair green eyes"], ["20"])
    data = load(f"anime:{root}")
    assert data.labels.tolist() == [[HAIR.index("blue"), EYES.index("red")]]
    assert "1 with a duplicate id" in data.notes[0]
    # an id that is itself the stem of a file, though it ends in an image suffix: faces/30.jpg.png
    root = anime_folder(tmp_path / "suffixed", ["30.jpg,blue hair red eyes"], ["30.jpg"])
    (root / "faces" / "30.jpg.jpg").rename(root / "faces" / "30.jpg.png")
    data = load(f"anime:{root}")
    assert len(data) == 1 and data.notes == [f"anime:{root}: kept 1 of 1 rows."]


def test_anime_images_sharing_a_stem_take_the_first_in_name_order(tmp_path: Path) -> None:
    save(tmp_path / "anime" / "faces" / "0.jpg", (200, 30, 30))  # before 0.png in name order
    save(tmp_path / "anime" / "faces" / "0.png", (30, 30, 200))
    root = anime_folder(tmp_path / "anime", ["0,blue hair red eyes"], [])
    data = load(f"anime:{root}")
    red, _, blue = ((data.samples[0].mean((1, 2)) + 1) * 127.5).tolist()
    assert red > 150 and blue < 80


def test_anime_ids_that_are_not_plain_file_stems_are_bad_rows(tmp_path: Path) -> None:
    rows = ["..,blue hair red eyes", "a/b,blue hair red eyes", "0,blue hair red eyes"]
    root = anime_folder(tmp_path / "anime", rows, ["0"])
    assert load(f"anime:{root}").notes == [f"anime:{root}: kept 1 of 3 rows; dropped 2 bad."]


def test_anime_errors(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match="no faces/ folder"):
        load(f"anime:{tmp_path}")
    (tmp_path / "faces").mkdir()
    with pytest.raises(GankitError, match="tags.csv does not exist"):
        load(f"anime:{tmp_path}")
    (tmp_path / "tags.csv").write_bytes("0,bl\u00e5 hair red eyes\n".encode("latin-1"))
    with pytest.raises(GankitError, match=r"tags.csv cannot be read as UTF-8 text \(.*\); replace it"):
        load(f"anime:{tmp_path}")
    (tmp_path / "tags.csv").write_text("0,blue hair red eyes\n")
    with pytest.raises(GankitError, match="none of the 1 row of tags.csv is usable"):
        load(f"anime:{tmp_path}")
    (tmp_path / "tags.csv").write_text("id,tags\n\n0\tblue hair red eyes\n1;red hair blue eyes\n")  # not commas
    with pytest.raises(GankitError, match=re.escape("none of the 2 rows of tags.csv is usable (2 bad; line 3 is "
                                                    "'0\\tblue hair red eyes', where rows are 'id,tags'); check")):
        load(f"anime:{tmp_path}")  # was: (2 bad), with no row or reason named
    (tmp_path / "tags.csv").write_text("id,tags\n\n")  # a header is no row
    with pytest.raises(GankitError, match="tags.csv holds no rows; give one row per image, e.g. '0,blue hair"):
        load(f"anime:{tmp_path}")


# --- celeba -------------------------------------------------------------------------------------
CELEBA_NAMES = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Male", "Smiling"]


def celeba_folder(root: Path) -> Path:
    rows = {"000001.jpg": "1 -1 -1 -1 1 -1",  # black hair, male
            "000002.jpg": "-1 1 -1 -1 -1 1",  # blond, smiling
            "000003.jpg": "-1 -1 -1 -1 1 1",  # no hair colour
            "000004.jpg": "1 1 -1 -1 1 1",  # two hair colours
            "000005.jpg": "-1 -1 1 -1 -1 -1",  # brown; its image is missing
            "000006.jpg": "-1 -1 -1 1 1 maybe"}  # bad row
    lines = [str(len(rows)), " ".join(CELEBA_NAMES)] + [f"{f}  {v}" for f, v in rows.items()]
    (root / "img_align_celeba").mkdir(parents=True)
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    face = np.zeros((218, 178, 3), np.uint8)
    face[20:198] = (0, 200, 0)  # the 178x178 centre; the 20-row bands must be cropped away
    for name in ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg", "000006.jpg"]:
        Image.fromarray(face).save(root / "img_align_celeba" / name, quality=100, subsampling=0)
    return root


def test_celeba_png_release_matches_rows_by_stem(tmp_path: Path) -> None:
    """CelebA's img_align_celeba_png holds 000001.png where list_attr_celeba.txt names 000001.jpg."""
    root = celeba_folder(tmp_path / "celeba")
    images_dir = root / "img_align_celeba"
    for jpeg in list(images_dir.glob("*.jpg")):
        Image.open(jpeg).save(jpeg.with_suffix(".png"))
        jpeg.unlink()
    Image.new("RGB", (178, 218)).save(images_dir / "999999.png")  # no row names it
    data = load(f"celeba:{root},attrs=hair+Smiling+male", size=32)
    assert data.labels.tolist() == [[0, 0, 1], [1, 1, 0]]
    assert data.notes[0].startswith(f"celeba:{root}: kept 2 of 6 rows; dropped 1 bad, "
                                    "2 with no or several hair colours, 1 without an image")
    assert data.notes[0].endswith(" 1 image in img_align_celeba/ without a row in list_attr_celeba.txt left out.")


def test_celeba_attributes(tmp_path: Path) -> None:
    root = celeba_folder(tmp_path / "celeba")
    data = load(f"celeba:{root},attrs=hair+Smiling+male", size=32)
    assert [a.name for a in data.info.attributes] == ["hair", "Smiling", "Male"]
    assert data.info.attributes[0].values == ("black", "blond", "brown", "gray")
    assert data.labels.tolist() == [[0, 0, 1], [1, 1, 0]]
    assert data.notes == [f"celeba:{root}: kept 2 of 6 rows; dropped 1 bad, "
                          "2 with no or several hair colours, 1 without an image."]
    green = (data.samples[:, 1] + 1) * 127.5
    assert green.min() > 190 and data.samples[:, 0].max() < -0.95  # only the centre crop remains
    attrs = root / "list_attr_celeba.txt"  # some copies write "no" as 0, not -1
    attrs.write_text(attrs.read_text().replace("-1 1 -1 -1 -1 1", "-1 1 -1 -1 -1 0"))
    assert load(f"celeba:{root},attrs=hair+Smiling+male", size=32).labels.tolist() == [[0, 0, 1], [1, 0, 0]]
    unlabelled = load(f"celeba:{root}")
    assert unlabelled.labels is None and len(unlabelled) == 4
    assert unlabelled.notes == [f"celeba:{root}: kept 4 of 6 rows; dropped 1 bad, 1 without an image."]


def test_celeba_attribute_file_with_a_byte_order_mark_reads_and_utf16_is_refused(tmp_path: Path) -> None:
    root = celeba_folder(tmp_path / "celeba")
    table = root / "list_attr_celeba.txt"
    table.write_bytes(b"\xef\xbb\xbf" + table.read_bytes())  # as Windows editors save UTF-8
    data = load(f"celeba:{root},attrs=hair+Smiling+male", size=32)
    assert data.labels.tolist() == [[0, 0, 1], [1, 1, 0]]
    table.write_bytes(b"\xff\xfe" + table.read_text().encode("utf-16-le"))  # as others save "Unicode"
    with pytest.raises(GankitError, match="list_attr_celeba.txt cannot be read as UTF-8 text"):
        load(f"celeba:{root}")


def test_celeba_identity_and_errors(tmp_path: Path) -> None:
    root = celeba_folder(tmp_path / "celeba")
    with pytest.raises(GankitError, match="needs .*identity_CelebA.txt"):
        load(f"celeba:{root},attrs=identity")
    (root / "identity_CelebA.txt").write_text("000001.jpg 7\n000002.jpg 3\n000003.jpg 7\n")
    data = load(f"celeba:{root},attrs=identity")
    assert data.info.attributes[0].values == ("3", "7") and data.labels[:, 0].tolist() == [1, 0, 1]
    # a header line and a row whose identity is no number are rows without an identity, not a traceback
    (root / "identity_CelebA.txt").write_text("image_id person\n000001.jpg 7\n000002.jpg 3\n000003.jpg x\n")
    data = load(f"celeba:{root},attrs=identity")
    assert data.labels[:, 0].tolist() == [1, 0] and "3 without an identity" in data.notes[0]  # 3, 4 and 5
    with pytest.raises(GankitError, match="names an attribute twice; list each once"):
        load(f"celeba:{root},attrs=Smiling+smiling")
    with pytest.raises(GankitError, match="no attribute 'Wings'"):
        load(f"celeba:{root},attrs=Wings")
    with pytest.raises(GankitError, match="only option is attrs"):
        load(f"celeba:{root},size=3")
    with pytest.raises(GankitError, match="celeba option 'attrs' needs its attributes after '='"):
        load(f"celeba:{root},attrs")  # was: 'attrs' is unknown; the only option is attrs
    with pytest.raises(GankitError, match="celeba option 'attrs' is given twice"):
        load(f"celeba:{root},attrs=hair,attrs=Male")
    with pytest.raises(GankitError, match="celeba option '' is unknown"):
        load(f"celeba:{root},,")
    bare = tmp_path / "bare"  # the attribute file, but the image archive not extracted
    bare.mkdir()
    (bare / "list_attr_celeba.txt").write_text((root / "list_attr_celeba.txt").read_text())
    with pytest.raises(GankitError, match=f"{bare} has no img_align_celeba/ folder; extract img_align_celeba.zip"):
        load(f"celeba:{bare}")


def test_a_malformed_row_does_not_shut_out_a_good_row_for_the_same_image(tmp_path: Path) -> None:
    root = celeba_folder(tmp_path / "celeba")
    table = root / "list_attr_celeba.txt"
    lines = table.read_text().splitlines()
    table.write_text("\n".join([*lines[:2], "000002.jpg 1 1", *lines[2:]]) + "\n")  # a short row first
    data = load(f"celeba:{root},attrs=hair+Smiling", size=32)
    assert data.labels.tolist() == [[0, 0], [1, 1]] and "2 bad" in data.notes[0] and "duplicate" not in data.notes[0]
    anime = anime_folder(tmp_path / "anime", ["0,blue hair:x\tred eyes:1", "0,pink hair:1,green eyes:1"], ["0"])
    data = load(f"anime:{anime}")  # a bad count first, then counted tags separated by commas
    assert data.labels.tolist() == [[HAIR.index("pink"), EYES.index("green")]] and "1 bad" in data.notes[0]


def test_celeba_labels_stay_with_their_images_when_earlier_rows_are_dropped(tmp_path: Path) -> None:
    root = celeba_folder(tmp_path / "celeba")
    table = root / "list_attr_celeba.txt"
    names, *rows = table.read_text().splitlines()[1:]
    rows = [rows[4], rows[3], *rows[:2]]  # no image, then two hair colours, then black/male and blond/smiling
    table.write_text("\n".join([names, *rows]) + "\n")
    data = load(f"celeba:{root},attrs=hair+Smiling", size=32)
    assert data.labels.tolist() == [[0, 0], [1, 1]]


def test_celeba_reads_kaggles_csv_tab_separated_identities_and_drops_duplicate_rows(tmp_path: Path) -> None:
    root = celeba_folder(tmp_path / "celeba")
    table = root / "list_attr_celeba.txt"
    lines = table.read_text().splitlines()[1:]  # Kaggle's copy has no count line ...
    csv = [",".join(["image_id", *lines[0].split()])] + [",".join(line.split()) for line in lines[1:]]
    table.unlink()  # ... and its own name
    table = root / "list_attr_celeba.csv"
    table.write_text("\n".join([*csv, csv[1]]) + "\n")  # ... and commas; the first row again at the end
    Image.new("RGB", (8, 8)).save(root / "img_align_celeba" / "000099.jpg")  # an image no row names
    (root / "identity_CelebA.txt").write_text("000001.jpg\t7\n000002.jpg\t3\n")
    data = load(f"celeba:{root},attrs=hair+Smiling", size=32)
    assert data.labels.tolist() == [[0, 0], [1, 1]]
    assert data.notes == [f"celeba:{root}: kept 2 of 7 rows; dropped 1 bad, 1 with a duplicate file name, 2 with no or "
                          "several hair colours, 1 without an image. 1 image in img_align_celeba/ without a row in "
                          "list_attr_celeba.csv left out."]
    assert load(f"celeba:{root},attrs=identity", size=32).labels[:, 0].tolist() == [1, 0]


@pytest.mark.parametrize("names, row, why", [
    (CELEBA_NAMES[:-1], "1 -1 -1 -1 1 -1", "line 3 has 6 values but the names line names 5 attributes"),
    (CELEBA_NAMES, "1 -1 -1 -1 1 2", "line 3 has the value '2' \\(values are -1, 0 or 1\\)"),
    (CELEBA_NAMES[:1], "1 1", "line 3 has 2 values but the names line names 1 attribute"),
])
def test_celeba_says_why_no_row_can_be_read(tmp_path: Path, names, row, why) -> None:
    root = celeba_folder(tmp_path / "celeba")
    (root / "list_attr_celeba.txt").write_text(f"1\n{' '.join(names)}\n000001.jpg {row}\n")
    with pytest.raises(GankitError, match=f"none of the 1 row of list_attr_celeba.txt is usable \\(1 bad; {why}\\)"):
        load(f"celeba:{root}")
    (root / "list_attr_celeba.txt").write_text("1\n\n000001.jpg 1\n")
    with pytest.raises(GankitError, match="has no attribute names line"):
        load(f"celeba:{root}")


def test_celeba_without_its_names_line_says_so(tmp_path: Path) -> None:
    root = celeba_folder(tmp_path / "celeba")
    values = " ".join(["-1"] * len(CELEBA_NAMES))
    (root / "list_attr_celeba.txt").write_text(f"2\n000001.jpg {values}\n000002.jpg {values}\n")
    # the first row was read as the names: 'no attribute Black_Hair; choose ... one of 000001.jpg, -1, -1, ...'
    with pytest.raises(GankitError, match="has no attribute names line \\(line 2 holds the values of 000001.jpg\\)"):
        load(f"celeba:{root},attrs=hair")


# --- faces --------------------------------------------------------------------------------------
def test_faces_are_deterministic_with_labels_in_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load("faces:40", size=16)
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "other-cache"))  # drawn again, not read
    second = load("faces:40", size=16)
    assert torch.equal(first.samples, second.samples) and torch.equal(first.labels, second.labels)
    assert first.samples.shape == (40, 3, 16, 16) and first.labels.shape == (40, 2)
    assert first.info.attributes == (HAIR, EYES)
    assert 0 <= first.labels[:, 0].min() and first.labels[:, 0].max() < 12
    assert 0 <= first.labels[:, 1].min() and first.labels[:, 1].max() < 11
    assert first.samples.min() >= -1 and first.samples.max() <= 1 and first.samples.std() > 0.2
    assert load("faces:40", size=16, channels=1).samples.shape == (40, 1, 16, 16)
    with pytest.raises(GankitError, match="positive number of faces"):
        load("faces:many")
    with pytest.raises(GankitError, match="positive number of faces"):
        load("faces:\u00b2")  # a superscript two: a digit to str.isdigit, not to int()


def test_faces_labels_uniform_and_independent() -> None:
    labels = face_labels(33_000)
    joint = np.zeros((12, 11))
    np.add.at(joint, (labels[:, 0], labels[:, 1]), 1)
    expected = 33_000 / (12 * 11)  # 250 per pair
    chi2 = ((joint - expected) ** 2 / expected).sum()
    assert chi2 < 200  # 131 degrees of freedom: the 99.9% quantile is about 185


@pytest.mark.parametrize("palette", [HAIR_RGB, EYE_RGB])
def test_face_colours_are_far_apart(palette: dict) -> None:
    distances = [np.linalg.norm(np.subtract(a, b)) for a, b in itertools.combinations(palette.values(), 2)]
    assert min(distances) > 80


def test_second_faces_load_draws_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from gankit.data import faces

    load("faces:20", size=8)
    monkeypatch.setattr(faces, "render_face", lambda *args: pytest.fail("drew a cached face"))
    assert len(load("faces:20", size=8)) == 20


def test_export_then_anime_round_trip(tmp_path: Path) -> None:
    export_faces(tmp_path / "export", 30, 16)
    assert (tmp_path / "export" / "tags.csv").read_text().splitlines()[0].endswith(" hair " +
           f"{EYES.values[face_labels(1)[0, 1]]} eyes")
    exported = load(f"anime:{tmp_path / 'export'}", size=16)
    original = load("faces:30", size=16)
    assert torch.equal(exported.labels, original.labels)
    assert torch.equal(exported.samples, original.samples)
    assert exported.notes == [f"anime:{tmp_path / 'export'}: kept 30 of 30 rows."]
    with pytest.raises(GankitError, match="already holds a tags.csv"):
        export_faces(tmp_path / "export", 5, 16)


def test_export_never_replaces_the_images_of_a_faces_folder(tmp_path: Path) -> None:
    mine = save(tmp_path / "data" / "faces" / "0.png", (1, 2, 3))  # a dataset whose labels file has another name
    before = mine.read_bytes()
    with pytest.raises(GankitError, match="faces already holds files, which the export would replace"):
        export_faces(tmp_path / "data", 3, 16)
    assert mine.read_bytes() == before and not (tmp_path / "data" / "tags.csv").exists()
    (tmp_path / "empty" / "faces").mkdir(parents=True)
    export_faces(tmp_path / "empty", 3, 16)  # an empty faces/ is an empty folder
    assert len(list((tmp_path / "empty" / "faces").iterdir())) == 3


def test_the_caching_bar_shows_on_a_terminal_only(tmp_path: Path, capsys, monkeypatch):
    """A log file would fill with the bar's redrawn lines; a terminal shows it."""
    import sys

    count = images.PROGRESS_FROM
    produce = lambda i: np.full((1, 1, 3), i % 256, dtype=np.uint8)  # noqa: E731
    kept, _ = images.write_pixels(tmp_path / "pixels", count, (1, 1, 3), produce)
    assert len(kept) == count and (tmp_path / "pixels").stat().st_size == 3 * count
    assert "caching images" not in capsys.readouterr().err  # pytest's stderr is no terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    images.write_pixels(tmp_path / "pixels", count, (1, 1, 3), produce)
    assert "caching images" in capsys.readouterr().err


@pytest.mark.parametrize("orientation", [1, 2, 3, 6, 7, 8])
def test_a_drafted_jpeg_decodes_to_the_exact_centre_square_whatever_its_exif_turn(tmp_path: Path, orientation: int):
    """A JPEG decoded at 1/4 scale covers a fraction of its last column and row (1001x703 -> 250.25 x
    175.75): the square must be cut at those fractions, and before the EXIF turn, which would carry the
    partial column to the other side (mean errors of 6.5/255 upright and 11.7/255 flipped before)."""
    from skimage.data import astronaut

    photo = Image.fromarray(astronaut()).resize((1001, 703), Image.Resampling.LANCZOS)
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo.save(tmp_path / "p.jpg", quality=98, exif=exif.tobytes())
    upright = PIL.ImageOps.exif_transpose(Image.open(tmp_path / "p.jpg"))  # full resolution: no draft
    side = min(upright.size)
    left, top = (upright.width - side) / 2, (upright.height - side) / 2
    exact = upright.resize((64, 64), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side))
    decoded = images.decode_image(tmp_path / "p.jpg", 64, 3).transpose(1, 2, 0).astype(float)
    assert np.abs(decoded - np.asarray(exact, dtype=float)).mean() < 1.0  # 0.5: the JPEG, and the draft
