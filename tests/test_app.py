"""The demo page: its generation functions (sizes, bounds, errors, agreement with
``gankit sample``), then the page itself in headless Chromium (choose a class, generate, see
the image; a bad seed shows an error and the page keeps working)."""

from __future__ import annotations

import io
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.pipeline import interpolate_latents, slerp
from gankit.app import (DISPLAY_TILE, INTERPOLATION_STEPS, MAX_IMAGES, PADDING, build_app, generate_grid,
                        interpolation_strip, launch, load_runs, to_image)
from gankit.artifacts import save_generator
from gankit.cli import main, make_parser
from gankit.data.base import Attribute, DataInfo
from gankit.errors import GankitError
from gankit.models import get_family
from gankit.models.cgan import CGANConfig
from gankit.models.gan import MLPConfig
from gankit.models.infogan import InfoGANConfig

from conftest import free_port

# Gradio's server thread warns about its own use of pandas; those notices are not about gankit.
pytestmark = pytest.mark.filterwarnings("ignore:::gradio")

DIGITS = DataInfo((1, 28, 28), (Attribute("digit", tuple("0123456789")),))
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def save_untrained(folder: Path, family: str, cfg, info: DataInfo) -> Path:
    """A run folder holding a freshly initialised generator: all that loading needs."""
    torch.manual_seed(0)
    save_generator(folder, family, cfg, info, get_family(family).build_generator(cfg, info), step=0)
    return folder


@pytest.fixture(scope="module")
def cgan_dir(tmp_path_factory) -> Path:
    return save_untrained(tmp_path_factory.mktemp("cgan"), "cgan", CGANConfig(g_hidden=(16, 32)), DIGITS)


@pytest.fixture(scope="module")
def infogan_dir(tmp_path_factory) -> Path:
    cfg = InfoGANConfig(dense=32, channels=8, q_hidden=16)
    return save_untrained(tmp_path_factory.mktemp("infogan"), "infogan", cfg, DataInfo((1, 28, 28)))


def grid_side(tiles: int, pixels: int = 28) -> int:
    """Pixels across a grid of ``tiles`` samples as shown (padding included, enlarged)."""
    return (tiles * (pixels + PADDING) + PADDING) * (DISPLAY_TILE // pixels)


def same_image(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.convert("RGB").tobytes() == b.convert("RGB").tobytes()


# --- the generation functions ------------------------------------------------------------------
@pytest.mark.parametrize("n, columns, rows", [(5, 3, 2), (16, 4, 4), (MAX_IMAGES, 8, 8)])
def test_grid_is_square_ish_and_enlarged(cgan_dir, n, columns, rows):
    assert generate_grid(gankit.load(cgan_dir), 0, n).size == (grid_side(columns), grid_side(rows))


def test_a_single_image_has_no_border(cgan_dir):
    assert generate_grid(gankit.load(cgan_dir), 0, 1).size == (DISPLAY_TILE, DISPLAY_TILE)


@pytest.mark.parametrize("seed, n, message", [
    (0, 0, "number of images"), (0, MAX_IMAGES + 1, "number of images"), (0, 2.5, "number of images"),
    (0, None, "number of images"), (-1, 4, "seed"), (1.5, 4, "seed"), (2**63, 4, "seed"), (None, 4, "seed"),
    ("x", 4, "seed")])
def test_out_of_range_inputs_are_user_errors(cgan_dir, seed, n, message):
    with pytest.raises(GankitError, match=message):
        generate_grid(gankit.load(cgan_dir), seed, n)


def cli_samples(run: Path, out: Path, *flags: str) -> torch.Tensor:
    assert main(["sample", str(run), "--seed", "3", "--n", "4", "--npz", str(out), *flags]) == 0
    return torch.from_numpy(np.load(out)["images"])


def test_chosen_and_random_classes_match_gankit_sample_and_the_api(cgan_dir, tmp_path):
    pipe = gankit.load(cgan_dir)
    fixed = pipe.generate(4, [7], seed=3)[0]
    assert same_image(generate_grid(pipe, 3, 4, {"digit": "7"}), to_image(fixed, 2))
    assert torch.equal(cli_samples(cgan_dir, tmp_path / "a.npz", "--label", "7"), fixed)
    assert torch.equal(cli_samples(cgan_dir, tmp_path / "b.npz", "--attr", "digit=7"), fixed)
    random = pipe.generate(4, None, seed=3)[0]
    assert same_image(generate_grid(pipe, 3, 4, {"digit": "random"}), to_image(random, 2))
    assert torch.equal(cli_samples(cgan_dir, tmp_path / "c.npz"), random)  # its labels drawn as generate draws them
    assert not same_image(to_image(fixed, 2), to_image(random, 2))


@pytest.mark.parametrize("choices, message", [({"digit": "eleven"}, "not a value of attribute 'digit'"),
                                              ({"hair": "red"}, "Unknown attribute 'hair'")])
def test_bad_attribute_choices_are_user_errors(cgan_dir, choices, message):
    with pytest.raises(GankitError, match=message):
        generate_grid(gankit.load(cgan_dir), 0, 4, choices)


def test_infogan_codes_match_gankit_sample(infogan_dir):
    pipe = gankit.load(infogan_dir)
    codes = {"c1": "3", "c2": 0.5, "c3": -2.0}
    expected = to_image(pipe.generate(4, seed=0, codes={"c1": 3, "c2": 0.5, "c3": -2.0})[0], 2)
    assert same_image(generate_grid(pipe, 0, 4, codes=codes), expected)


@pytest.mark.parametrize("codes, message", [({"c2": 2.5}, "between -2.0 and 2.0"), ({"c1": "10"}, "values 0-9"),
                                            ({"c9": 0}, "Unknown code 'c9'")])
def test_bad_codes_are_user_errors(infogan_dir, codes, message):
    with pytest.raises(GankitError, match=message):
        generate_grid(gankit.load(infogan_dir), 0, 4, codes=codes)


def test_codes_on_a_model_without_codes_are_user_errors(cgan_dir):
    with pytest.raises(GankitError, match="no latent codes"):
        generate_grid(gankit.load(cgan_dir), 0, 4, codes={"c1": 1})


def test_slerp_ends_at_both_latents_and_stays_on_the_sphere():
    a, b = torch.randn(1, 100, generator=torch.Generator().manual_seed(0)), torch.randn(1, 100)
    b = b * a.norm() / b.norm()
    path = slerp(a[0], b[0], torch.linspace(0, 1, 8))
    assert torch.allclose(path[0], a[0], atol=1e-5) and torch.allclose(path[-1], b[0], atol=1e-5)
    assert torch.allclose(path.norm(dim=1), a.norm().expand(8), rtol=1e-4)
    ones, t = torch.ones(100), torch.linspace(0, 1, 5)  # a cosine of exactly 1 with itself, unlike a[0]'s 0.99999994
    assert torch.allclose(slerp(ones, ones, t), ones.expand(5, -1))  # no division by sin(0)


def test_interpolation_keeps_fixed_codes_and_spans_both_seeds(infogan_dir):
    G = gankit.load(infogan_dir).generator
    codes = {"c1": 2, "c2": 0.5, "c3": -1.0}
    za, zb = G.latent_with_codes(1, codes), G.latent_with_codes(1, codes)
    z = interpolate_latents(za, zb, G.noise_dim, INTERPOLATION_STEPS)
    assert z.shape == (INTERPOLATION_STEPS, G.latent_dim)
    assert torch.equal(z[:, G.noise_dim:], za[:, G.noise_dim:].expand(INTERPOLATION_STEPS, -1))
    assert torch.allclose(z[0], za[0], atol=1e-5) and torch.allclose(z[-1], zb[0], atol=1e-5)


def test_interpolation_switches_categorical_codes_half_way_and_blends_continuous_ones(infogan_dir):
    G = gankit.load(infogan_dir).generator
    za, zb = G.latent_with_codes(1, {"c1": 2, "c2": -1.0}), G.latent_with_codes(1, {"c1": 7, "c2": 1.0})
    categorical = sum(code.width for code in G.codes.categorical)
    z = interpolate_latents(za, zb, G.noise_dim, 8, categorical)
    c1 = z[:, G.noise_dim:G.noise_dim + 10]
    assert ((c1 == 0) | (c1 == 1)).all() and (c1.sum(1) == 1).all()  # every step is one category
    assert c1.argmax(1).tolist() == [2, 2, 2, 2, 7, 7, 7, 7]
    c2 = z[:, G.codes.lookup("c2").start + G.noise_dim]
    assert torch.allclose(c2, torch.linspace(-1, 1, 8))


def test_interpolation_strip_is_one_row(cgan_dir, infogan_dir):
    for run, kwargs in [(cgan_dir, {"choices": {"digit": "4"}}), (infogan_dir, {"codes": {"c1": "1"}})]:
        strip = interpolation_strip(gankit.load(run), 0, 1, **kwargs)
        assert strip.size == (grid_side(INTERPOLATION_STEPS), grid_side(1))
    with pytest.raises(GankitError, match="second seed"):
        interpolation_strip(gankit.load(cgan_dir), 0, -3)


def test_full_size_mlp_generates_64_images_well_under_a_second(tmp_path):
    pipe = gankit.load(save_untrained(tmp_path, "cgan", CGANConfig(), DIGITS))
    generate_grid(pipe, 0, MAX_IMAGES)  # the first call pays for one-off allocations
    start = time.perf_counter()
    generate_grid(pipe, 1, MAX_IMAGES, {"digit": "5"})
    assert time.perf_counter() - start < 0.5


def test_runs_that_cannot_be_shown_are_user_errors(tmp_path):
    with pytest.raises(GankitError, match="does not exist"):
        load_runs([tmp_path / "missing"])
    with pytest.raises(GankitError, match="at least one"):
        load_runs([])
    toy = save_untrained(tmp_path, "gan", MLPConfig(g_hidden=(8,), latent_dim=2), DataInfo((2,)))
    with pytest.raises(GankitError, match="image runs only"):
        load_runs([toy])


def test_serving_without_gradio_says_what_to_install(cgan_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    with pytest.raises(GankitError, match=r"pip install 'gankit\[serve\]'"):
        build_app([cgan_dir])


# --- the command line (needs `gankit serve` in cli.py) -----------------------------------------
def test_serve_listens_on_this_machine_only_by_default():
    args = make_parser().parse_args(["serve", "run-a", "run-b"])
    assert (args.runs, args.host, args.port) == (["run-a", "run-b"], "127.0.0.1", 7860)


def test_serve_with_a_missing_run_is_one_line_and_status_2(tmp_path, capsys):
    # The folder is checked before any server starts.
    assert main(["serve", str(tmp_path / "missing"), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error:") and "does not exist" in err and err.count("\n") == 1


# --- the page in a real browser ----------------------------------------------------------------
@pytest.fixture(scope="module")
def page_url(cgan_dir, infogan_dir):
    app = build_app([cgan_dir, infogan_dir])
    port = free_port()
    launch(app, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("Chromium is not installed (apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=1280,900"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def wait_for(condition, what: str, timeout: float = 30):
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def element(driver, css: str):
    from selenium.webdriver.common.by import By

    return wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, css), css)[0]


def set_number(driver, css: str, value: int) -> None:
    from selenium.webdriver.common.keys import Keys

    field = element(driver, css)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value), Keys.TAB)  # Gradio reads a number field when it loses focus


def choose(driver, dropdown: str, value: str) -> None:
    element(driver, f"{dropdown} input").click()
    element(driver, f"{dropdown} li[role=option][aria-label='{value}']").click()


def shown_image(driver, css: str, width: int) -> Image.Image:
    """The picture in ``css`` once one ``width`` pixels wide has loaded, fetched from the server."""
    def loaded():
        img = driver.find_elements("css selector", f"{css} img")
        return img and img[0].get_property("naturalWidth") == width and img[0]
    img = wait_for(loaded, f"an image {width} pixels wide in {css}")
    with urllib.request.urlopen(img.get_attribute("src"), timeout=10) as response:
        return Image.open(io.BytesIO(response.read()))


def test_page_generates_the_chosen_class(browser, page_url, cgan_dir, tmp_path):
    browser.get(page_url)
    choose(browser, "#run0-attr-0", "3")
    element(browser, "#run0-generate").click()
    image = shown_image(browser, "#run0-grid", grid_side(4))  # the default 16 images, 4 x 4
    assert same_image(image, generate_grid(gankit.load(cgan_dir), 0, 16, {"digit": "3"}))
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert Image.open(tmp_path / "page.png").size[0] > 0


def test_bad_seed_shows_an_error_and_the_page_keeps_working(browser, page_url):
    browser.get(page_url)
    set_number(browser, "#run0-seed input", -5)
    element(browser, "#run0-generate").click()
    wait_for(lambda: "The seed must be a whole number" in browser.page_source, "the error message")
    set_number(browser, "#run0-seed input", 2)
    element(browser, "#run0-generate").click()
    shown_image(browser, "#run0-grid", grid_side(4))


def test_the_page_draws_in_minus_1_to_1_not_each_picture_s_own_range():
    assert np.all(np.asarray(to_image(torch.zeros(1, 1, 28, 28), 1)) == 128)
    assert np.all(np.asarray(to_image(torch.full((1, 1, 28, 28), 0.5), 1)) == 191)


def test_the_page_fixes_every_attribute_chosen():
    from gankit.app import fixed_labels

    hair = Attribute("hair", ("black", "blue", "red"))
    eyes = Attribute("eyes", ("brown", "green", "red", "blue"))
    assert fixed_labels(DataInfo((3, 16, 16), (hair, eyes)), {"hair": "red", "eyes": "blue"}) == {"hair": 2, "eyes": 3}
    assert fixed_labels(DataInfo((3, 16, 16), (hair, eyes)), {"hair": "random", "eyes": "green"}) == {"eyes": 1}


def test_the_interpolation_strip_keeps_the_first_seed_s_labels(cgan_dir):
    from gankit.models.base import random_labels

    pipe = gankit.load(cgan_dir)
    first = [random_labels(pipe.info, 1, torch.Generator().manual_seed(s), torch.device("cpu")).item() for s in (0, 1)]
    assert first[0] != first[1]  # else the test could not tell the seeds apart
    seen = []
    pipe.generator.register_forward_hook(lambda module, args, out: seen.append(args[1]))
    interpolation_strip(pipe, 0, 1)
    assert seen[-1].flatten().tolist() == [first[0]] * INTERPOLATION_STEPS


def test_sampling_without_a_seed_differs_each_call_and_leaves_torchs_stream_alone(cgan_dir):
    pipe = gankit.load(cgan_dir)
    assert not torch.equal(pipe.sample(4, labels=[3]), pipe.sample(4, labels=[3]))
    with torch.random.fork_rng():  # the suite's own stream is left as it was
        torch.manual_seed(0)
        expected = torch.rand(2)
        torch.manual_seed(0)
        pipe.sample(2, labels=[3])  # a script that seeded torch keeps its order
        assert torch.equal(torch.rand(2), expected)


def test_decode_pairs_each_latent_with_its_label(cgan_dir):
    pipe = gankit.load(cgan_dir)
    z, labels = pipe.latents(4), [[0], [1], [2], [3]]
    torch.testing.assert_close(pipe.decode(z, labels), pipe.generator(z, torch.tensor(labels)))


def test_generating_in_several_batches_keeps_each_sample_s_label(cgan_dir):
    pipe = gankit.load(cgan_dir)
    labels = [[0], [1], [2], [3], [4]]
    whole, _ = pipe.generate(5, labels, seed=0)
    assert torch.allclose(pipe.generate(5, labels, seed=0, batch_size=2)[0], whole, atol=1e-5)  # other blocking


def test_an_interpolation_draws_its_label_with_its_own_seed(cgan_dir):
    from gankit.models.base import random_labels

    pipe = gankit.load(cgan_dir)
    drawn = [random_labels(pipe.info, 1, torch.Generator().manual_seed(s), torch.device("cpu")) for s in range(5)]
    assert len({int(y) for y in drawn}) > 1  # else the seeds could not be told apart
    for seed, y in enumerate(drawn):
        assert torch.equal(pipe.interpolate(4, seed=seed), pipe.interpolate(4, seed=seed, labels=y.tolist()))


def test_a_generator_json_of_another_format_is_refused(cgan_dir, tmp_path):
    import json
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(cgan_dir, copy)
    meta = json.loads((copy / "generator.json").read_text())
    (copy / "generator.json").write_text(json.dumps({**meta, "format": "other/1"}))
    with pytest.raises(GankitError, match="is not a gankit-generator/1 file"):
        gankit.load(copy)
