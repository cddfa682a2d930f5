"""``gankit serve``: a local web page (Gradio) for drawing samples from trained runs.

One tab per run: a seed, a number of images, a choice per attribute for conditional runs
(a value or "random"), InfoGAN's codes (a dropdown per categorical code, a slider per
continuous one), and a strip that walks between the latents of two seeds. Super-resolution
runs get an upload box instead and show bicubic | SR.

The page only calls the plain functions at the top of this module (``generate_grid``,
``interpolation_strip``), which check every input and raise GankitError; the page shows that
sentence as an error and keeps serving. Gradio is imported only to build the page, so those
functions and their tests do not need it. Nothing leaves the machine: analytics are off, there
is no share link and the theme uses the system's fonts instead of a font CDN.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

from gankit.data.base import DataInfo
from gankit.data.images import DECODE_ERRORS
from gankit.errors import GankitError
from gankit.models.infogan import TRAVERSE_RANGE, InfoGenerator
from gankit.pipeline import SAMPLE_SEED_MAX, GeneratorPipeline, load
from gankit.upscale import comparison, read_image

if TYPE_CHECKING:
    import gradio as gr

RANDOM = "random"  # the choice that leaves an attribute or a categorical code to chance
MAX_IMAGES = 64
INTERPOLATION_STEPS = 8
MAX_UPSCALE_PIXELS = 512 * 512  # the page's input limit: a 4x result is then 2048 x 2048
DISPLAY_TILE = 112  # pixels a sample is enlarged to (nearest neighbour), e.g. 28 -> 112
PADDING = 2  # pixels between the samples of a grid, before enlarging


# --- inputs ------------------------------------------------------------------------------------
def whole_number(value: object, low: int, high: int) -> int | None:
    """``value`` as an int when it is a whole number in [low, high], else None."""
    if isinstance(value, int):  # exact, where a float would round a large seed
        return value if low <= value <= high else None
    try:
        number = float(value)  # the page sends floats, None for an empty field
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and low <= number <= high else None


def check_seed(seed: object, what: str = "seed") -> int:
    checked = whole_number(seed, 0, SAMPLE_SEED_MAX)
    if checked is None:
        raise GankitError(f"The {what} must be a whole number from 0 to {SAMPLE_SEED_MAX}, not {seed}.")
    return checked


def check_count(n: object) -> int:
    checked = whole_number(n, 1, MAX_IMAGES)
    if checked is None:
        raise GankitError(f"The number of images must be a whole number from 1 to {MAX_IMAGES}, not {n}.")
    return checked


def check_codes(generator: torch.nn.Module, codes: dict[str, int | float | str]) -> dict[str, int | float]:
    """Codes checked against the model's; continuous ones also against the slider's range."""
    if not codes:
        return {}
    if not isinstance(generator, InfoGenerator):
        raise GankitError("This model has no latent codes; leave them out (they apply to infogan runs only).")
    checked = {}
    for name, value in codes.items():
        code = generator.codes.lookup(name)
        checked[code.name] = generator.codes.value(code.name, value)
        if not code.categorical and not TRAVERSE_RANGE[0] <= checked[code.name] <= TRAVERSE_RANGE[1]:
            raise GankitError(f"Code {code.name} must be between {TRAVERSE_RANGE[0]} and {TRAVERSE_RANGE[1]}, "
                              f"not {value}.")
    return checked


def fixed_labels(info: DataInfo, choices: dict[str, str]) -> dict[str, int]:
    """The page's choices (attribute name -> value name, or "random") as the classes fixed."""
    names = [a.name for a in info.attributes]
    for name in choices:
        if name not in names:
            raise GankitError(f"Unknown attribute {name!r}; this model's attributes are {', '.join(names) or 'none'}.")
    return {a.name: a.index(choices[a.name]) for a in info.attributes if choices.get(a.name, RANDOM) != RANDOM}


def draw_inputs(pipe: GeneratorPipeline, n: int, seed: int, choices: dict[str, str],
                codes: dict[str, int | float]) -> tuple[Tensor, Tensor | None]:
    """Latents and labels from one seeded stream, labels first, as ``GeneratorPipeline.generate``."""
    g = torch.Generator(device=pipe.device).manual_seed(seed)
    y = pipe.labels_tensor(n, fixed_labels(pipe.info, choices) or None, g)  # None: random, or none at all
    if codes:
        return pipe.generator.latent_with_codes(n, codes, g, pipe.device), y
    return pipe.generator.sample_latent(n, g, pipe.device), y


# --- pictures ----------------------------------------------------------------------------------
def to_image(samples: Tensor, columns: int) -> Image.Image:
    """Samples in [-1, 1] (N, C, H, W) as one RGB grid, each enlarged to about DISPLAY_TILE pixels."""
    grid = make_grid(samples, nrow=columns, padding=PADDING, normalize=True, value_range=(-1, 1))
    pixels = grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    scale = display_scale(samples.shape[-2:])
    image = Image.fromarray(pixels)
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def display_scale(size: Sequence[int]) -> int:
    return max(1, round(DISPLAY_TILE / max(size)))


@torch.inference_mode()
def generate_grid(pipe: GeneratorPipeline, seed: object, n: object, choices: dict[str, str] | None = None,
                  codes: dict[str, int | float | str] | None = None) -> Image.Image:
    """``n`` samples for the chosen attributes and codes as a square-ish grid image."""
    n, seed = check_count(n), check_seed(seed)
    z, y = draw_inputs(pipe, n, seed, choices or {}, check_codes(pipe.generator, codes or {}))
    return to_image(pipe.generator(z, y).float().cpu(), math.ceil(math.sqrt(n)))


@torch.inference_mode()
def interpolation_strip(pipe: GeneratorPipeline, seed_a: object, seed_b: object,
                        choices: dict[str, str] | None = None, codes: dict[str, int | float | str] | None = None,
                        steps: int = INTERPOLATION_STEPS) -> Image.Image:
    """One row of ``steps`` samples walking from seed A's latent to seed B's, with seed A's labels."""
    seed_a, seed_b = check_seed(seed_a, "first seed"), check_seed(seed_b, "second seed")
    codes = check_codes(pipe.generator, codes or {})
    za, y = draw_inputs(pipe, 1, seed_a, choices or {}, codes)
    zb, _ = draw_inputs(pipe, 1, seed_b, choices or {}, codes)
    z = pipe.walk(za, zb, steps)
    return to_image(pipe.generator(z, None if y is None else y.expand(steps, -1)).float().cpu(), steps)


def load_runs(run_dirs: Sequence[str | Path]) -> dict[str, GeneratorPipeline]:
    """The runs by tab title (the folder as given); only image runs can be shown."""
    if not run_dirs:
        raise GankitError("No run folder given; pass at least one folder that `gankit train` wrote.")
    pipes = {}
    for run_dir in run_dirs:
        pipe = load(run_dir)
        if not pipe.info.is_image:
            raise GankitError(f"{run_dir} generates vectors of shape {pipe.info.shape}, not images; "
                              "the demo shows image runs only.")
        pipes[str(run_dir)] = pipe
    return pipes


# --- the page ----------------------------------------------------------------------------------
def import_gradio() -> ModuleType:
    # Read by gradio when it is imported: no usage reports leave the machine.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ModuleNotFoundError:
        raise GankitError("gankit serve needs Gradio; install it with pip install 'gankit[serve]'.") from None
    return gradio


def user_errors(gr: ModuleType, fn: Callable) -> Callable:
    """``fn`` with its GankitError shown on the page as an error (gr.Error) instead of a crash."""
    def wrapped(*args: object) -> object:
        try:
            return fn(*args)
        except GankitError as e:
            # A user's mistake, not the server's: no traceback in the server's log.
            raise gr.Error(str(e), print_exception=False) from None
    return wrapped


def generator_tab(gr: ModuleType, pipe: GeneratorPipeline, prefix: str) -> None:
    """Controls (left) and pictures (right) of one run inside the current tab."""
    with gr.Row():
        with gr.Column(scale=1):
            seed = gr.Number(value=0, precision=0, label="Seed", elem_id=f"{prefix}-seed")
            count = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="Number of images", elem_id=f"{prefix}-count")
            attributes = [gr.Dropdown([RANDOM, *a.values], value=RANDOM, label=a.name, elem_id=f"{prefix}-attr-{i}")
                          for i, a in enumerate(pipe.info.attributes)]
            code_names, code_inputs = code_controls(gr, pipe.generator, prefix)
            generate = gr.Button("Generate", variant="primary", elem_id=f"{prefix}-generate")
            seed_b = gr.Number(value=1, precision=0, label="Interpolate to seed", elem_id=f"{prefix}-seed-b")
            walk = gr.Button(f"Interpolate ({INTERPOLATION_STEPS} steps)", elem_id=f"{prefix}-interpolate")
        with gr.Column(scale=2):
            grid = output_image(gr, "Samples", f"{prefix}-grid")
            strip = output_image(gr, "Interpolation", f"{prefix}-strip")

    def requested(values: Sequence) -> tuple[dict[str, str], dict[str, int | float]]:
        """The attribute choices and the codes that are not "random", from the controls' values."""
        chosen = dict(zip([a.name for a in pipe.info.attributes], values[:len(attributes)]))
        codes = dict(zip(code_names, values[len(attributes):]))
        return chosen, {k: v for k, v in codes.items() if v != RANDOM}

    def on_generate(seed_value: object, n: object, *values: object) -> Image.Image:
        return generate_grid(pipe, seed_value, n, *requested(values))

    def on_interpolate(seed_value: object, seed_b_value: object, *values: object) -> Image.Image:
        return interpolation_strip(pipe, seed_value, seed_b_value, *requested(values))

    controls = [*attributes, *code_inputs]
    # api_name: the page's endpoints (gradio_client, the API page) named by tab and action
    generate.click(user_errors(gr, on_generate), [seed, count, *controls], grid, api_name=f"{prefix}_generate")
    walk.click(user_errors(gr, on_interpolate), [seed, seed_b, *controls], strip, api_name=f"{prefix}_interpolate")


def output_image(gr: ModuleType, label: str, elem_id: str) -> "gr.Image":
    # No share button: sharing uploads to Hugging Face, and this page stays on the machine.
    return gr.Image(label=label, type="pil", format="png", interactive=False, buttons=["download", "fullscreen"],
                    elem_id=elem_id)


def code_controls(gr: ModuleType, generator: torch.nn.Module, prefix: str) -> tuple[list[str], list]:
    """InfoGAN: a dropdown per categorical code ("random" or a value), a slider per continuous one."""
    if not isinstance(generator, InfoGenerator):
        return [], []
    inputs = []
    for code in generator.codes.codes:
        if code.categorical:
            inputs.append(gr.Dropdown([RANDOM, *map(str, range(code.values))], value=RANDOM,
                                      label=f"Code {code.name}", elem_id=f"{prefix}-{code.name}"))
        else:
            inputs.append(gr.Slider(*TRAVERSE_RANGE, value=0.0, step=0.05, label=f"Code {code.name}",
                                    elem_id=f"{prefix}-{code.name}"))
    return [c.name for c in generator.codes.codes], inputs


def upscale_image(pipe: GeneratorPipeline, path: str | Path | None) -> Image.Image:
    """A super-resolution run's answer to an uploaded image file: bicubic | SR side by side.
    The page hands over the file as uploaded, so gankit's own decoder reads it, as `gankit
    upscale` does (EXIF orientation, 16-bit samples, alpha), after a look at its size alone."""
    if path is None:
        raise GankitError("Upload an image first, then press Upscale.")
    try:
        with Image.open(path) as im:  # reads the header only: no pixels are decoded yet
            width, height = im.size
    except Image.DecompressionBombError:  # a header claiming far more pixels than Pillow opens
        raise GankitError(f"The image is larger than Pillow's pixel limit; the page upscales at most "
                          f"{MAX_UPSCALE_PIXELS:,} pixels.") from None
    except DECODE_ERRORS:
        raise GankitError("The upload is not an image gankit can read; upload a PNG, JPEG or another common format.") \
            from None
    if width * height > MAX_UPSCALE_PIXELS:
        raise GankitError(f"The image has {width}x{height} pixels; the page upscales at most "
                          f"{MAX_UPSCALE_PIXELS:,} pixels (use `gankit upscale` for larger ones).")
    return Image.fromarray(comparison(pipe.generator, read_image(Path(path)))[1])


def upscale_tab(gr: ModuleType, pipe: GeneratorPipeline, prefix: str) -> None:
    """An upload box and the upscaled picture, for srresnet and srgan runs."""
    with gr.Row():
        with gr.Column(scale=1):
            # A file, not gr.Image: Gradio would decode an image itself, outside gankit's checks.
            source = gr.File(label="Low-resolution image", file_types=["image"], type="filepath",
                             elem_id=f"{prefix}-input")
            go = gr.Button(f"Upscale {pipe.generator.scale}x", variant="primary", elem_id=f"{prefix}-upscale")
        with gr.Column(scale=2):
            result = output_image(gr, "Bicubic | super-resolved", f"{prefix}-result")
    go.click(user_errors(gr, lambda path: upscale_image(pipe, path)), [source], result, api_name=f"{prefix}_upscale")


# A family whose page needs other controls registers its tab builder here; every other family
# gets ``generator_tab``.
TAB_BUILDERS: dict[str, Callable] = {"srresnet": upscale_tab, "srgan": upscale_tab}


def build_app(run_dirs: Sequence[str | Path]) -> "gr.Blocks":
    """The page for ``run_dirs``: one tab per run. Raises GankitError for a bad run folder."""
    pipes = load_runs(run_dirs)
    gr = import_gradio()
    # delete_cache: every picture and upload lands in Gradio's cache; files older than an hour go, hourly.
    with gr.Blocks(title="gankit", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("# gankit\nSamples from trained generators. Pick a run, set the controls, press Generate.")
        with gr.Tabs():
            for index, (title, pipe) in enumerate(pipes.items()):
                with gr.Tab(f"{title} ({pipe.family})", elem_id=f"run{index}-tab"):
                    TAB_BUILDERS.get(pipe.family, generator_tab)(gr, pipe, f"run{index}")
    return app


def theme(gr: ModuleType) -> "gr.themes.Base":
    # System fonts: the default theme fetches its fonts from Google's CDN.
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def launch(app: "gr.Blocks", host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve ``app`` on ``host:port`` without a share link, in a background thread."""
    gr = import_gradio()
    try:
        app.launch(server_name=host, server_port=port, share=False, inbrowser=False, ssr_mode=False,
                   mcp_server=False, quiet=True, theme=theme(gr), prevent_thread_lock=True)
    except OSError:
        raise GankitError(f"Cannot serve on {host}:{port}: the port is taken or the host is not this "
                          "machine's; pass another --port or --host.") from None


def serve(run_dirs: Sequence[str | Path], host: str = "127.0.0.1", port: int = 7860) -> None:
    """``gankit serve``: build the page and serve it until interrupted."""
    app = build_app(run_dirs)
    launch(app, host, port)
    print(f"gankit demo on http://{host}:{port} (Ctrl-C stops it)")
    app.block_thread()  # until Ctrl-C, which closes the server
