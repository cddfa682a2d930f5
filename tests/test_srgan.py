"""SRResNet / SRGAN: the data pipeline, the Y-channel metric, tiling, VGG weights, the commands."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import PIL.Image
from PIL import Image

from gankit.cli import main
from gankit.data import DataInfo, load_dataset
from gankit.data.photos import (MAX_TILES, Photo, bicubic_upscale, downscale, folder_photos, load_tiles, photo_set,
                                 tiles)
from gankit.errors import GankitError
from gankit.upscale import split_name
from gankit.metrics.sr import evaluate_sr, luma, to_uint8, y_scores
from gankit.models.srgan import SRGANConfig, SRResNetGenerator, random_crops, receptive_radius, upscale
from gankit.models.vgg import ENV_VARIABLE, VGGFeatures, locate_weights

from conftest import step_context

TINY_SR = ["--set", "model.blocks=1", "--set", "model.channels=8", "--set", "model.crop=32",
           "--batch-size", "4", "--no-progress", "--set", "train.threads=1", "--set", "train.log_every=1"]
TINY_D = ["--set", "model.d_channels=4", "--set", "model.d_dense=16"]  # srgan's D; srresnet has none


def psnr_rgb(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(4 / (a - b).pow(2).mean()))


def write_photo(path: Path, size: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, (size[1] // 8 + 1, size[0] // 8 + 1, 3), dtype=np.uint8)
    Image.fromarray(smooth).resize(size, Image.Resampling.BICUBIC).save(path)


# --- data ------------------------------------------------------------------------------------------
def test_photos_refuse_size_and_channel_settings_they_would_ignore():
    from gankit.config import DataConfig

    with pytest.raises(GankitError, match="photos are 3x128x128 tiles; drop data.image_size"):
        load_dataset("photos", DataConfig("photos", image_size=64))
    with pytest.raises(GankitError, match="drop data.image_size/data.channels"):
        load_dataset("photos", DataConfig("photos", channels=1))
    assert load_dataset("photos", DataConfig("photos", image_size=128, channels=3)).info.shape == (3, 128, 128)


def test_photos_are_tiles_in_range_with_two_held_out():
    data = load_dataset("photos")
    assert data.samples.shape[1:] == (3, 128, 128) and len(data) > 100
    assert data.samples.min() >= -1 and data.samples.max() <= 1
    photos = photo_set("photos")
    assert [p.name for p in photos.validation] == ["chelsea", "rocket"]
    assert all(p.pixels.dtype == np.uint8 and p.pixels.shape[0] == 3 for p in photos.train)
    by_name = {p.name: p.pixels for p in photos.train}
    camera = by_name["camera"]  # a grey photograph: three equal channels
    assert (camera[0] == camera[1]).all() and (camera[1] == camera[2]).all()
    assert by_name["camera@0.5"].shape == (3, 256, 256) and by_name["camera@0.7"].shape == (3, 358, 358)
    assert not {"chelsea", "rocket"} & {name.split("@")[0] for name in by_name}


def test_photos_spec_chooses_what_trains_and_what_is_held_out():
    photos = photo_set("photos:train=camera+coins,held=moon")
    assert [p.name for p in photos.train] == ["camera", "coins", "camera@0.7", "coins@0.7", "camera@0.5", "coins@0.5"]
    assert [p.name for p in photos.validation] == ["moon"]
    assert [p.name for p in photo_set("photos:held=rocket").validation] == ["rocket"]  # train keeps its default
    assert len(load_dataset("photos:train=camera,held=moon")) == len(tiles(photo_set("photos:train=camera").train))


@pytest.mark.parametrize("spec, named", [
    ("photos:train=camera+kitten", "kitten, not a bundled photograph"),
    ("photos:test=camera", "'test=camera' is unknown; the options are train= and held="),
    ("photos:camera", "'camera' is unknown"),
    ("photos:train=", "lists no photograph"),
    ("photos:train=astronaut+astronaut", "photos:train= names a photograph twice; list each once"),
])
def test_photos_spec_errors_name_the_option_and_the_choices(spec, named):
    with pytest.raises(GankitError, match=named):
        load_dataset(spec)


def test_tiles_overlap_by_half_and_cover_the_image():
    image = np.arange(3 * 256 * 384, dtype=np.int64).reshape(3, 256, 384) % 251
    out = tiles([Photo("x", image.astype(np.uint8))], tile=128)
    assert out.shape == (3 * 5, 3, 128, 128)  # rows at 0, 64, 128; columns at 0, 64, ..., 256
    assert out.dtype == torch.uint8  # pixels: TensorData converts them a batch at a time
    assert torch.equal(out[1], torch.from_numpy(image[:, 0:128, 64:192].astype(np.uint8)))


def test_too_many_tiles_are_capped(monkeypatch):
    monkeypatch.setattr("gankit.data.photos.MAX_TILES", 4)
    out = tiles([Photo("x", np.zeros((3, 256, 256), np.uint8))], tile=128)
    assert len(out) == 4 and MAX_TILES > 4


def test_random_crops_are_aligned_pairs():
    g = torch.Generator().manual_seed(0)
    tiles_ = load_dataset("photos").samples[:8]
    hr = random_crops(tiles_, 96, g)
    lr = downscale(hr, 4)
    assert hr.shape == (8, 3, 96, 96) and lr.shape == (8, 3, 24, 24)
    assert lr.min() >= -1 and lr.max() <= 1
    # Bicubic upscaling of the aligned input is close to the patch; shifted by 4 px it is not.
    aligned = psnr_rgb(bicubic_upscale(lr, 4), hr)
    shifted = psnr_rgb(bicubic_upscale(lr, 4)[..., 4:], hr[..., :-4])
    assert aligned > 22 and aligned > shifted + 3
    # Every crop is a (possibly flipped) window of its tile.
    for tile, patch in zip(tiles_, hr):
        windows = tile.unfold(1, 96, 1).unfold(2, 96, 1).permute(1, 2, 0, 3, 4).reshape(-1, 3, 96, 96)
        flipped = [patch, patch.flip(2), patch.flip(1), patch.flip(1).flip(2)]
        candidates = flipped + [p.transpose(1, 2) for p in flipped]
        assert any((windows == c).all((1, 2, 3)).any() for c in candidates)


def test_folder_holds_out_every_tenth_and_skips_bad_files(tmp_path):
    for i in range(11):
        write_photo(tmp_path / f"{i:02d}.png", (160, 144), i)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    write_photo(tmp_path / "small.png", (40, 40), 99)
    photos = folder_photos(tmp_path)
    assert [p.name for p in photos.validation] == ["00.png", "10.png"]
    assert len(photos.train) == 10 and "skipped 1 unreadable" in photos.notes[0]
    assert len(tiles(photos.train)) == 9  # the 40x40 image gives no 128 px tile
    assert len(folder_photos(tmp_path, all_validation=True).validation) == 13 - 1
    notes = load_tiles(f"folder:{tmp_path}", 96).notes
    assert notes[1] == f"folder:{tmp_path}: 1 training image smaller than 128x128 gave no training tile."


def test_folder_photos_name_why_images_were_skipped(tmp_path, monkeypatch):
    write_photo(tmp_path / "a_held.png", (40, 30), 2)  # the first of every ten is held out
    write_photo(tmp_path / "b_wide.png", (60, 40), 3)
    write_photo(tmp_path / "c_tiny.png", (20, 20), 4)
    write_photo(tmp_path / "d_huge.png", (200, 200), 1)
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 10_000)
    photos = folder_photos(tmp_path)
    assert photos.notes == [f"folder:{tmp_path}: 3 images; skipped 1 above the pixel limit."]
    with pytest.raises(GankitError, match=r"No training image is at least 128x128 pixels \(the largest of 2 "
                                          r"training images is 60x40\); give larger photographs"):
        load_tiles(f"folder:{tmp_path}", 96)


def test_folder_errors_are_one_sentence(tmp_path):
    with pytest.raises(GankitError, match="holds no image files"):
        folder_photos(tmp_path)
    (tmp_path / "a.png").write_bytes(b"garbage")
    with pytest.raises(GankitError, match="could be decoded"):
        folder_photos(tmp_path)
    with pytest.raises(GankitError, match="photos or folder:PATH"):
        photo_set("mnist")


# --- the metric ------------------------------------------------------------------------------------
def test_y_channel_uses_bt601():
    assert luma(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16)
    assert luma(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235)
    assert luma(np.array([[[255, 0, 0]]], np.uint8))[0, 0] == pytest.approx(16 + 65.481)


def test_psnr_and_ssim_against_hand_computed_values():
    rng = np.random.default_rng(0)
    hr = rng.integers(40, 200, (40, 40, 3)).astype(np.uint8)
    sr = hr + np.uint8(10)
    scores = y_scores(sr, hr, shave=4)
    y_step = 10 * 219 / 255  # a grey step of 10 moves Y by 10 x 219/255
    assert scores["psnr"] == pytest.approx(20 * math.log10(255 / y_step), abs=1e-6)
    assert y_scores(hr, hr, shave=4)["ssim"] == pytest.approx(1.0)
    assert scores["ssim"] < 1
    # Only the shaved border differs: a perfect score.
    for side in (np.s_[:4], np.s_[-4:], np.s_[:, :4], np.s_[:, -4:]):  # each of the four borders
        bordered = hr.copy()
        bordered[side] = 0
        assert y_scores(bordered, hr, shave=4)["psnr"] == math.inf


def test_ssim_is_wang_et_als_with_a_gaussian_window_and_population_statistics():
    """Computed here by hand: Gaussian window sigma 1.5 (11 taps), C1 = (0.01 L)^2, C2 = (0.03 L)^2,
    population (co)variances, the mean over pixels whose window lies inside the image."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    hr = rng.integers(40, 200, (40, 40, 3)).astype(np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-20, 21, hr.shape), 0, 255).astype(np.uint8)
    a, b = luma(hr)[4:-4, 4:-4], luma(sr)[4:-4, 4:-4]

    def window(x):
        return gaussian_filter(x, 1.5, truncate=3.5, mode="reflect")

    mean_a, mean_b = window(a), window(b)
    var_a, var_b, cov = window(a * a) - mean_a**2, window(b * b) - mean_b**2, window(a * b) - mean_a * mean_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim_map = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) / ((mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2))
    assert y_scores(sr, hr, shave=4)["ssim"] == pytest.approx(ssim_map[5:-5, 5:-5].mean(), rel=1e-9)


def test_the_psnr_logged_in_training_is_over_the_range_of_2():
    from gankit.models.srgan import psnr

    off = torch.full((2, 3, 4, 4), 0.1)
    assert psnr(off, torch.zeros_like(off)).item() == pytest.approx(10 * math.log10(4 / 0.01), rel=1e-6)
    assert psnr(off, off).item() == pytest.approx(10 * math.log10(4 / 1e-10), rel=1e-6)  # the clamp, not inf


@pytest.mark.parametrize("weight", [1e-3, 0.5])
def test_srgan_adds_its_adversarial_term_with_its_weight(weight):
    """G's loss = content + adversarial_weight x the loss of D's verdict on the SR images."""
    from gankit.models import get_family

    torch.manual_seed(0)
    cfg = SRGANConfig(blocks=1, channels=8, d_channels=8, d_dense=16, crop=32, content="mse",
                      adversarial_weight=weight)
    model = get_family("srgan")(cfg, DataInfo((3, 32, 32)))
    verdicts = []
    model.discriminator.register_forward_hook(lambda module, args, out: verdicts.append(out.detach()))
    ctx = step_context(model)
    stats = model.train_step([(torch.rand(4, 3, 40, 40) * 2 - 1, None)], ctx)
    adversarial = model.loss.g(verdicts[-1].float())  # the last D pass: G's update, on the SR images
    assert (stats["loss_g"] - stats["content"]).item() == pytest.approx(weight * adversarial.item(), rel=1e-4)


def test_evaluate_sr_reports_both_methods_and_the_gain():
    photo = Photo("p", np.random.default_rng(0).integers(0, 256, (3, 64, 70)).astype(np.uint8))
    result = evaluate_sr(lambda lr: bicubic_upscale(lr, 4), [photo], 4)
    row, mean = result["images"][0], result["mean"]
    assert row["size"] == "68x64"  # cropped to multiples of 4
    assert row["sr_psnr"] == row["bicubic_psnr"] and mean["psnr_gain"] == 0
    nearest = evaluate_sr(lambda lr: torch.nn.functional.interpolate(lr, scale_factor=4), [photo], 4)["mean"]
    assert nearest["bicubic_psnr"] == mean["bicubic_psnr"] and nearest["sr_psnr"] < nearest["bicubic_psnr"]
    assert nearest["psnr_gain"] == round(nearest["sr_psnr"] - nearest["bicubic_psnr"], 4) < 0
    assert nearest["ssim_gain"] == round(nearest["sr_ssim"] - nearest["bicubic_ssim"], 4) != 0


def test_8_bit_quantisation_rounds():
    assert to_uint8(torch.full((3, 1, 1), 2 * 100.6 / 255 - 1)).tolist() == [[[101, 101, 101]]]


def test_evaluate_sr_leaves_out_images_too_small_to_score():
    rng = np.random.default_rng(0)
    big, small, thin = (Photo(name, rng.integers(0, 256, shape).astype(np.uint8))
                        for name, shape in (("big", (3, 40, 40)), ("small", (3, 5, 5)), ("thin", (3, 1, 500))))
    result = evaluate_sr(lambda lr: bicubic_upscale(lr, 4), [big, small, thin], 4)
    assert [r["image"] for r in result["images"]] == ["big"] and result["skipped"] == ["small", "thin"]
    with pytest.raises(GankitError, match=r"Every image to score \(small\) is smaller than 19x19 pixels"):
        evaluate_sr(lambda lr: bicubic_upscale(lr, 4), [small], 4)
    # 19 pixels pass the size but are cropped to 16 for the scale: too small, so left out, not a crash.
    for scale, side in ((4, 19), (2, 15), (8, 27)):
        edge = Photo("edge", rng.integers(0, 256, (3, side, side)).astype(np.uint8))
        result = evaluate_sr(lambda lr: bicubic_upscale(lr, scale), [big, edge], scale)
        assert result["skipped"] == ["edge"], scale


# --- the network and tiling ------------------------------------------------------------------------
def tiny_generator(blocks: int = 1) -> SRResNetGenerator:
    torch.manual_seed(0)
    return SRResNetGenerator(SRGANConfig(blocks=blocks, channels=8), DataInfo((3, 32, 32))).eval()


def test_generator_upscales_any_size_by_four():
    out = tiny_generator()(torch.rand(2, 3, 13, 17) * 2 - 1)
    assert out.shape == (2, 3, 52, 68) and out.abs().max() <= 1


def test_bicubic_skip_starts_at_bicubic():
    G = SRResNetGenerator(SRGANConfig(blocks=1, channels=8, bicubic_skip=True), DataInfo((3, 32, 32))).eval()
    lr = torch.rand(2, 3, 9, 11) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(G(lr), bicubic_upscale(lr, 4))


def test_tiled_upscale_equals_one_pass():
    G = tiny_generator(blocks=2)
    lr = torch.rand(1, 3, 37, 29) * 2 - 1
    with torch.inference_mode():
        whole = G(lr)
    tiled = upscale(G, lr, tile=8)
    assert torch.allclose(tiled, whole, atol=1e-5)
    # Without enough context the tile borders show: the overlap is what makes them equal.
    assert (upscale(G, lr, tile=8, overlap=0) - whole).abs().max() > 1e-3
    assert receptive_radius(G) == 4 + 4 + 1 + 2 + 1


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_tiled_upscale_equals_one_pass_at_every_scale_with_a_trained_tail(scale):
    torch.manual_seed(0)
    G = SRResNetGenerator(SRGANConfig(scale=scale, blocks=1, channels=8), DataInfo((3, 32, 32))).eval()
    torch.nn.init.normal_(G.tail[0].weight, std=0.05)  # a trained tail, not the zero start: its reach counts
    lr = torch.rand(1, 3, 23, 19) * 2 - 1
    with torch.inference_mode():
        whole = G(lr)
    assert torch.allclose(upscale(G, lr, tile=8), whole, atol=1e-5)


# --- VGG weights -----------------------------------------------------------------------------------
def vgg22_state(path: Path) -> Path:
    """A file with the keys (and shapes) of torchvision's VGG19 up to relu2_2."""
    from torchvision.models import vgg19

    torch.manual_seed(0)
    features = vgg19(weights=None).features[:9]
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def test_vgg_features_load_from_a_file(tmp_path):
    from torchvision.models import vgg19

    net = VGGFeatures("vgg22", vgg22_state(tmp_path / "vgg19.pth"))
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    out = net(images)
    assert out.shape == (2, 128, 16, 16)
    assert not any(p.requires_grad for p in net.parameters())
    assert not net.train().training
    # the file's weights, on ImageNet-normalised [0, 1] pixels, scaled by the paper's 1/12.75
    reference = vgg19(weights=None).features[:9].eval()
    reference.load_state_dict({k[len("features."):]: v for k, v in torch.load(tmp_path / "vgg19.pth").items()})
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = reference(((images + 1) / 2 - mean) / std) / 12.75
    torch.testing.assert_close(out, expected)


def test_vgg_weights_errors_say_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(ENV_VARIABLE, raising=False)
    with pytest.raises(GankitError, match=r"vgg19-dcbb9e9d.pth.*hub/checkpoints.*model.content=mse"):
        locate_weights()
    with pytest.raises(GankitError, match="does not exist"):
        locate_weights(tmp_path / "missing.pth")
    partial = vgg22_state(tmp_path / "partial.pth")
    with pytest.raises(GankitError, match="is not torchvision's VGG19 weights"):
        VGGFeatures("vgg54", partial)  # relu5_4 needs layers the file lacks
    torch.save({"features.0.weight": GankitError("code")}, tmp_path / "pickled.pth")
    with pytest.raises(GankitError, match=r"\(it holds more than tensors\); download it again") as caught:
        VGGFeatures("vgg22", tmp_path / "pickled.pth")
    assert "weights_only" not in str(caught.value)  # torch's advice to unpickle would run the file's code
    monkeypatch.setenv(ENV_VARIABLE, str(partial))
    assert locate_weights() == partial


# --- the commands ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def srresnet_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "srresnet"
    assert main(["train", "srresnet", "--out", str(out), "--steps", "3", *TINY_SR]) == 0
    return out


def test_srresnet_run_writes_a_comparison_preview(srresnet_run):
    records = [json.loads(line) for line in (srresnet_run / "metrics.jsonl").read_text().splitlines()]
    assert {"content", "psnr"} <= records[-1].keys() and "loss_d" not in records[-1]
    preview = Image.open(srresnet_run / "samples" / "step-000003.png")
    assert preview.size == (3 * 32 + 4 * 2, 6 * 32 + 7 * 2)  # bicubic | SR | HR, six rows


def test_eval_scores_the_held_out_photos(srresnet_run, tmp_path, capsys):
    assert main(["eval", str(srresnet_run), "--json", str(tmp_path / "sr.json")]) == 0
    result = json.loads((tmp_path / "sr.json").read_text())
    assert [r["image"] for r in result["images"]] == ["chelsea", "rocket"]
    assert result["mean"]["bicubic_psnr"] > 25  # the baseline on these photos
    assert "gain over bicubic" in capsys.readouterr().out
    assert main(["eval", str(srresnet_run), "--data", "photos", "--json", str(tmp_path / "again.json")]) == 0
    result = json.loads((tmp_path / "again.json").read_text())
    assert [r["image"] for r in result["images"]] == ["chelsea", "rocket"] and result["split"] == "held out"


def test_eval_scores_what_the_runs_data_spec_held_out(tmp_path):
    out = tmp_path / "moon-held"
    assert main(["train", "srresnet", "--out", str(out), "--data", "photos:train=camera,held=moon", "--steps", "1",
                 *TINY_SR]) == 0
    assert main(["eval", str(out), "--json", str(tmp_path / "sr.json")]) == 0
    result = json.loads((tmp_path / "sr.json").read_text())
    assert [r["image"] for r in result["images"]] == ["moon"] and result["split"] == "held out"
    # Training on a held-out photograph is allowed (benchmarks/sr.py's upper bound), and said.
    both = "photos:train=camera+moon,held=moon+rocket"
    assert photo_set(both).notes == [f"{both}: moon also trains, so its score is not a held-out score."]
    assert split_name(both, both, None) == "held out; moon also trained"
    # What counts is what the run trained on, not what --data names.
    assert split_name("photos:train=astronaut+chelsea", "photos:held=chelsea", "photos:held=chelsea") \
        == "held out; chelsea also trained"
    assert split_name("photos:train=camera", "photos:held=astronaut", "photos:held=astronaut") == "held out"


def test_upscale_writes_four_times_larger_images(srresnet_run, tmp_path):
    write_photo(tmp_path / "in.png", (30, 22), 0)
    assert main(["upscale", str(srresnet_run), str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png")]) == 0
    assert Image.open(tmp_path / "out.png").size == (120, 88)
    assert main(["upscale", str(srresnet_run), str(tmp_path / "in.png"), "-o", str(tmp_path / "cmp.png"),
                 "--compare", "--from-hr", "--tile", "8"]) == 0
    assert Image.open(tmp_path / "cmp.png").size == (3 * 28 + 2 * 4, 20)
    assert main(["upscale", str(srresnet_run), str(tmp_path / "in.png"), "--tile", "3"]) == 2  # hours on a photo


def test_upscale_names_its_output_by_the_scale_and_checks_it_first(srresnet_run, tmp_path, monkeypatch, capsys):
    import gankit.upscale

    write_photo(tmp_path / "in.png", (30, 22), 0)
    assert main(["upscale", str(srresnet_run), str(tmp_path / "in.png")]) == 0
    assert Image.open(tmp_path / "in-x4.png").size == (120, 88)
    monkeypatch.setattr(gankit.upscale, "comparison", lambda *a: pytest.fail("upscaled before checking --out"))
    assert main(["upscale", str(srresnet_run), str(tmp_path / "in.png"), "-o", str(tmp_path / "out.txt")]) == 2
    assert "out.txt ends in .txt, which is not an image format gankit can write" in capsys.readouterr().err
    before = (tmp_path / "in.png").read_bytes()
    assert main(["upscale", str(srresnet_run), str(tmp_path / "in.png"), "-o", str(tmp_path / "." / "in.png")]) == 2
    assert "is the image being upscaled, which writing it would replace" in capsys.readouterr().err
    assert (tmp_path / "in.png").read_bytes() == before


def test_upscale_stands_a_phone_photo_upright(srresnet_run, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: stored turned a quarter, shown upright
    Image.new("RGB", (20, 12), (90, 140, 60)).save(tmp_path / "phone.jpg", exif=exif)
    assert main(["upscale", str(srresnet_run), str(tmp_path / "phone.jpg"), "-o", str(tmp_path / "up.png")]) == 0
    assert Image.open(tmp_path / "up.png").size == (48, 80)  # 12x20 as shown, times 4


def test_srgan_starts_from_srresnet_and_resumes(srresnet_run, tmp_path):
    out = tmp_path / "srgan"
    args = ["train", "srgan", "--out", str(out), "--init", str(srresnet_run), *TINY_SR, *TINY_D,
            "--set", "model.content=mse"]
    assert main([*args, "--steps", "1"]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"loss_d", "d_real", "content"} <= records[-1].keys()
    assert main(["train", "srgan", "--resume", str(out), "--steps", "2", "--no-progress"]) == 0
    assert json.loads((out / "generator.json").read_text())["step"] == 2


def test_init_starts_g_and_its_average_from_the_donors_generator(srresnet_run, tmp_path, monkeypatch):
    import gankit
    import gankit.train.loop as loop

    starts = {}
    real_run = loop.Trainer.run

    def recording_run(trainer):
        starts["g"], starts["ema"] = ({k: v.clone() for k, v in m.state_dict().items()}
                                      for m in (trainer.model.generator, trainer.ema.model))
        return real_run(trainer)

    monkeypatch.setattr(loop.Trainer, "run", recording_run)
    assert main(["train", "srgan", "--out", str(tmp_path / "srgan"), "--init", str(srresnet_run), *TINY_SR, *TINY_D,
                 "--set", "model.content=mse", "--set", "train.ema=0.999", "--steps", "1"]) == 0
    donor = gankit.load(srresnet_run).generator.state_dict()
    for start in (starts["g"], starts["ema"]):
        assert start.keys() == donor.keys() and all(torch.equal(start[k], donor[k]) for k in donor)


def test_srgan_trains_with_the_perceptual_loss(srresnet_run, tmp_path):
    out = tmp_path / "srgan"
    weights = vgg22_state(tmp_path / "vgg19.pth")
    assert main(["train", "srgan", "--out", str(out), "--init", str(srresnet_run), *TINY_SR, *TINY_D, "--steps", "2",
                 "--set", "model.content=vgg22", "--vgg-weights", str(weights)]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    content = [r["content"] for r in records if "content" in r]
    assert len(content) == 2 and all(0 < c < 10 for c in content)


def test_srresnet_resumes_without_a_discriminator(srresnet_run, tmp_path):
    out = tmp_path / "again"
    assert main(["train", "srresnet", "--out", str(out), "--steps", "1", *TINY_SR]) == 0
    assert main(["train", "srresnet", "--resume", str(out), "--steps", "2", "--no-progress"]) == 0
    assert json.loads((out / "generator.json").read_text())["step"] == 2


def test_user_errors_are_one_line(srresnet_run, tmp_path, capsys):
    cases = [
        ["train", "srgan", "--out", str(tmp_path / "a"), "--init", str(srresnet_run), "--steps", "1",
         "--set", "model.content=mse", "--set", "model.blocks=2", "--no-progress"],
        ["sample", str(srresnet_run)],
        ["upscale", str(srresnet_run), str(tmp_path / "missing.png")],
        ["eval", str(srresnet_run), "--data", "folder:" + str(tmp_path / "nowhere")],
        ["train", "srresnet", "--data", "mnist", "--steps", "1", "--out", str(tmp_path / "b")],
        ["train", "srresnet", "--set", "model.crop=100", "--steps", "1", "--out", str(tmp_path / "c")],
        ["train", "srresnet", "--set", "data.channels=1", "--steps", "1", "--out", str(tmp_path / "e")],
        ["train", "srgan", "--out", str(tmp_path / "f"), "--init", str(srresnet_run), "--steps", "1", *TINY_SR, *TINY_D,
         "--set", "model.content=mse", "--set", "model.bicubic_skip=false"],
    ]
    cases += [["eval", str(srresnet_run), "--n", "3"], ["eval", str(srresnet_run), "--features", "inception"],
              ["eval", str(srresnet_run), "--seed", "3"]]
    expected = ["does not fit this srgan generator", "use `gankit upscale", "does not exist",
                "is not a folder", "photos or folder:PATH", "model.crop must be a multiple of 16",
                "drop data.image_size and data.channels",
                "trained with model.bicubic_skip=True and this srgan sets model.bicubic_skip=False",
                "--n applies to GAN runs; a super-resolution run is scored by PSNR/SSIM",
                "--features applies to GAN runs", "--seed applies to GAN runs"]
    for argv, phrase in zip(cases, expected):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert phrase in err and len(err.splitlines()) == 1, err


def test_demo_page_upscales_an_upload(srresnet_run, tmp_path, monkeypatch):
    from gankit.app import upscale_image
    from gankit.pipeline import load

    pipe = load(srresnet_run)
    Image.new("RGB", (10, 7), (200, 30, 30)).save(tmp_path / "small.png")
    assert upscale_image(pipe, tmp_path / "small.png").size == (2 * 40 + 4, 28)
    with pytest.raises(GankitError, match="Upload an image first"):
        upscale_image(pipe, None)
    Image.new("RGB", (1024, 1024)).save(tmp_path / "large.png")
    with pytest.raises(GankitError, match="gankit upscale"):
        upscale_image(pipe, tmp_path / "large.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # 1024x1024 is then a decompression bomb
    with pytest.raises(GankitError, match="larger than Pillow's pixel limit; the page upscales at most 262,144"):
        upscale_image(pipe, tmp_path / "large.png")
    monkeypatch.undo()
    (tmp_path / "text.png").write_text("not an image")  # the browser's image/* filter goes by the name
    with pytest.raises(GankitError, match="The upload is not an image gankit can read"):
        upscale_image(pipe, tmp_path / "text.png")
    ramp = np.linspace(0, 65535, 10 * 7).astype(np.uint16).reshape(7, 10)
    Image.fromarray(ramp).save(tmp_path / "deep.png")  # 16-bit: gankit scales it, Gradio clipped it to white
    upscaled = np.asarray(upscale_image(pipe, tmp_path / "deep.png"))[:, :40]  # the bicubic half
    assert 100 < upscaled.mean() < 155


def test_srresnet_trains_on_any_folder_and_scores_it(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        write_photo(photos / f"{i}.jpg", (150, 130), i)
    out = tmp_path / "run"
    assert main(["train", "srresnet", "--data", f"folder:{photos}", "--out", str(out), "--steps", "1", *TINY_SR]) == 0
    assert main(["eval", str(out), "--json", str(tmp_path / "held.json")]) == 0
    assert [r["image"] for r in json.loads((tmp_path / "held.json").read_text())["images"]] == ["0.jpg"]
    assert main(["eval", str(out), "--data", f"folder:{photos}", "--json", str(tmp_path / "all.json")]) == 0
    assert len(json.loads((tmp_path / "all.json").read_text())["images"]) == 3


def test_a_folder_runs_held_out_images_stay_the_ones_it_held_out(tmp_path, capsys):
    """The folder split is by position: a file added after training moves it, so the run records
    its held-out names and eval scores those, not images it trained on."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(1, 12):
        write_photo(photos / f"p{i:02d}.jpg", (150, 130), i)  # p01 and p11 held out (every tenth)
    out = tmp_path / "run"
    assert main(["train", "srresnet", "--data", f"folder:{photos}", "--out", str(out), "--steps", "1", *TINY_SR]) == 0
    meta = json.loads((out / "generator.json").read_text())
    assert meta["held_out"] == ["p01.jpg", "p11.jpg"]
    write_photo(photos / "a00.jpg", (150, 130), 0)  # sorts first: by position, p10 (trained) would now be held out
    assert main(["eval", str(out), "--json", str(tmp_path / "held.json")]) == 0
    assert [r["image"] for r in json.loads((tmp_path / "held.json").read_text())["images"]] == ["p01.jpg", "p11.jpg"]
    (photos / "p11.jpg").unlink()
    capsys.readouterr()
    assert main(["eval", str(out)]) == 2
    assert f"folder:{photos} no longer holds 1 image the run held out of training (p11.jpg); put them back" \
        in capsys.readouterr().err
    meta["held_out"] = "p01.jpg"
    (out / "generator.json").write_text(json.dumps(meta))
    assert main(["eval", str(out)]) == 2
    assert "held_out is not a list of file names; restore the file as gankit wrote it." in capsys.readouterr().err


def test_a_rollback_in_a_run_without_d_keeps_the_checkpoint(tmp_path):
    """srresnet has no D optimizer: the rollback's log line used to crash on it."""
    from gankit.config import RunConfig, parse_set, set_value
    from gankit.data import TensorData
    from gankit.models import get_family
    from gankit.train import train

    family = get_family("srresnet")
    cfg = RunConfig("srresnet", family.default_config("photos"))
    settings = [value for flag, value in zip(TINY_SR, TINY_SR[1:]) if flag == "--set"]
    for assignment in settings + ["train.batch_size=4", "train.steps=2", "train.checkpoint_every=1",
                                  "train.rollbacks=1", "train.progress=false"]:
        set_value(cfg, *parse_set(assignment))
    tiles = torch.rand(8, 3, 48, 48) * 2 - 1
    good = TensorData(tiles, None, DataInfo((3, 32, 32)), "photos")
    run = train(cfg, tmp_path / "sr", data=good)
    cfg.train.steps = 4
    broken = TensorData(torch.full_like(tiles, float("nan")), None, DataInfo((3, 32, 32)), "photos")
    with pytest.raises(GankitError, match="the last checkpoint in .* is intact"):
        train(cfg, run, resume=True, data=broken)
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "event" in line]
    assert events and events[0]["event"] == "rollback" and "lr_g" in events[0] and "lr_d" not in events[0]
    assert (run / "checkpoints" / "step-000002").is_dir()


def test_low_resolution_inputs_are_anti_aliased_and_photos_keep_their_aspect():
    from gankit.data.photos import rescaled

    torch.manual_seed(0)
    noise = torch.rand(1, 3, 64, 64) * 2 - 1  # std 0.58: averaging 4x4 pixels and more leaves about a fifth
    assert downscale(noise, 4).std() < 0.2
    assert rescaled(Photo("x", np.zeros((3, 100, 200), np.uint8)), 0.5).pixels.shape == (3, 50, 100)
