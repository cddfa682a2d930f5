"""Export: ONNX and TorchScript files of a tiny trained run give PyTorch's outputs at any batch
size, carry their input layout (labels, InfoGAN's code columns), and bad requests are user errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import gankit
from gankit.artifacts import save_generator
from gankit.cli import main
from gankit.data.base import DataInfo
from gankit.data.photos import bicubic_upscale
from gankit.errors import GankitError
from gankit.export import export_generator, sidecar_path
from gankit.models import get_family
from gankit.models.infogan import InfoGANConfig
from gankit.models.srgan import SRGANConfig

BATCHES = (1, 7)


@pytest.fixture(scope="module")
def cgan_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "cgan"
    assert main(["train", "cgan", "--out", str(out), "--steps", "3", "--set", "model.g_hidden=16,32",
                 "--set", "model.d_hidden=32,16", "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def infogan_dir(tmp_path_factory) -> Path:
    """An untrained InfoGAN generator saved as a run: the layout of z is what matters here."""
    folder = tmp_path_factory.mktemp("infogan")
    cfg, info = InfoGANConfig(dense=32, channels=8, q_hidden=16), DataInfo((1, 28, 28))
    torch.manual_seed(0)
    save_generator(folder, "infogan", cfg, info, get_family("infogan").build_generator(cfg, info), step=0)
    return folder


@pytest.fixture(scope="module")
def srresnet_dir(tmp_path_factory) -> Path:
    """A tiny SRResNet whose last layer is not zero, so its output is more than the bicubic skip."""
    folder = tmp_path_factory.mktemp("srresnet")
    cfg, info = SRGANConfig(blocks=1, channels=8), DataInfo((3, 32, 32))
    torch.manual_seed(0)
    generator = get_family("srresnet").build_generator(cfg, info)
    torch.nn.init.normal_(generator.tail[0].weight, std=0.05)
    save_generator(folder, "srresnet", cfg, info, generator, step=0)
    return folder


def reference_inputs(pipe, n: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    inputs = {"z": pipe.generator.sample_latent(n, g)}
    if pipe.info.attributes:
        inputs["labels"] = torch.randint(10, (n, 1), generator=g)
    return inputs


def pytorch_output(pipe, inputs: dict[str, torch.Tensor]) -> np.ndarray:
    with torch.inference_mode():
        return pipe.generator(inputs["z"], inputs.get("labels")).numpy()


def check_onnx_matches(path: Path, pipe) -> None:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in BATCHES:
        inputs = reference_inputs(pipe, n)
        (out,) = session.run(None, {k: v.numpy() for k, v in inputs.items()})
        assert out.shape == (n, *pipe.info.shape)
        assert np.abs(out - pytorch_output(pipe, inputs)).max() < 1e-4


def test_onnx_matches_pytorch_and_records_the_labels(cgan_dir, tmp_path):
    path = export_generator(cgan_dir, "onnx", tmp_path / "out" / "g.onnx")
    pipe = gankit.load(cgan_dir)
    check_onnx_matches(path, pipe)
    sidecar = json.loads(sidecar_path(path).read_text())
    embedded = {p.key: p.value for p in onnx.load(str(path)).metadata_props}["gankit"]
    assert json.loads(embedded) == sidecar
    assert sidecar["inputs"]["labels"] == {"dtype": "int64", "shape": ["batch", 1],
                                           "columns": [{"name": "digit", "values": list("0123456789")}]}
    assert sidecar["inputs"]["z"]["shape"] == ["batch", 100]
    assert sidecar["output"]["shape"] == ["batch", 1, 28, 28] and sidecar["output"]["range"] == [-1.0, 1.0]
    assert sidecar["family"] == "cgan" and sidecar["step"] == 3  # which training step the file holds


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_the_layout_describes_each_models_own_inputs_and_output():
    """A label column per attribute, z all noise outside InfoGAN, and no [-1, 1] range for points."""
    from gankit.data.base import Attribute
    from gankit.export import export_metadata
    from gankit.models.gan import MLPConfig
    from gankit.pipeline import GeneratorPipeline

    hair, eyes = Attribute("hair", ("black", "blue")), Attribute("eyes", ("red", "green", "brown"))
    faces, points = DataInfo((3, 8, 8), (hair, eyes)), DataInfo((2,))
    cgan = get_family("cgan").build_generator(get_family("cgan").Config(g_hidden=(8,)), faces)
    layout = export_metadata(GeneratorPipeline(cgan, {"family": "cgan"}), "torchscript")
    assert layout["inputs"]["labels"]["shape"] == ["batch", 2]
    assert [c["name"] for c in layout["inputs"]["labels"]["columns"]] == ["hair", "eyes"]
    assert layout["inputs"]["z"]["segments"] == [{"name": "noise", "start": 0, "width": 100,
                                                  "prior": "standard normal"}]
    gan = get_family("gan").build_generator(MLPConfig(latent_dim=2, g_hidden=(8,)), points)
    output = export_metadata(GeneratorPipeline(gan, {"family": "gan"}), "onnx")["output"]
    assert output["shape"] == ["batch", 2] and output["range"] is None


def test_torchscript_matches_pytorch(cgan_dir, tmp_path):
    path = export_generator(cgan_dir, "torchscript", tmp_path / "g.pt")
    pipe = gankit.load(cgan_dir)
    extra = {"gankit.json": ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    for n in BATCHES:
        inputs = reference_inputs(pipe, n)
        with torch.inference_mode():
            out = module(inputs["z"], inputs["labels"]).numpy()
        assert np.abs(out - pytorch_output(pipe, inputs)).max() < 1e-4
    assert json.loads(extra["gankit.json"]) == json.loads(sidecar_path(path).read_text())


def test_infogan_codes_are_columns_of_z(infogan_dir, tmp_path):
    path = export_generator(infogan_dir, "onnx", tmp_path / "info.onnx")
    check_onnx_matches(path, gankit.load(infogan_dir))
    inputs = json.loads(sidecar_path(path).read_text())["inputs"]
    assert list(inputs) == ["z"]  # no label input: the codes travel inside z
    assert inputs["z"]["shape"] == ["batch", 74]
    assert [(s["name"], s["start"], s["width"], s.get("kind")) for s in inputs["z"]["segments"]] == [
        ("noise", 0, 62, None), ("c1", 62, 10, "categorical"), ("c2", 72, 1, "continuous"),
        ("c3", 73, 1, "continuous")]


LR_SIZES = ((1, 7, 9), (2, 16, 12))  # (batch, height, width): sizes other than the traced example's


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")  # the format asked for
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_super_resolution_export_takes_any_image_size(srresnet_dir, tmp_path, fmt):
    path = export_generator(srresnet_dir, fmt, tmp_path / f"sr.{fmt}")
    pipe = gankit.load(srresnet_dir)
    if fmt == "onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        run = lambda lr: session.run(None, {"lr": lr.numpy()})[0]  # noqa: E731
    else:
        module = torch.jit.load(str(path))
        run = lambda lr: module(lr).numpy()  # noqa: E731
    for n, h, w in LR_SIZES:
        lr = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(h)) * 2 - 1
        with torch.inference_mode():
            expected = pipe.generator(lr).numpy()
        assert np.abs(expected - bicubic_upscale(lr, 4).numpy()).max() > 1e-2  # the network adds something
        out = run(lr)
        assert out.shape == (n, 3, 4 * h, 4 * w)
        assert np.abs(out - expected).max() < 1e-4
    layout = json.loads(sidecar_path(path).read_text())
    assert layout["inputs"]["lr"]["shape"] == ["batch", 3, "height", "width"]
    assert layout["output"]["name"] == "hr" and layout["output"]["scale"] == 4


def test_default_path_is_inside_the_run(infogan_dir):
    path = export_generator(infogan_dir, "torchscript")
    assert path == infogan_dir / "generator.pt" and sidecar_path(path).name == "generator.pt.json"


@pytest.mark.parametrize("fmt, out, message", [
    ("tflite", "g.tflite", "Unknown export format 'tflite'; choose one of onnx, torchscript"),
    ("torchscript", ".", "is a folder; give a file path inside it"),
    ("torchscript", "file.txt/g.pt", "Cannot create the folder of --out .* choose a writable path"),  # below a file
    ("onnx", "m.pt", "ends in .pt, which names the torchscript format, but the format is onnx; end it in .onnx"),
    ("torchscript", "m.ONNX", "which names the onnx format, but the format is torchscript"),
    ("torchscript", "m.onnx.json", "ends in .json, the name of an export's input layout; end it in .pt")])
def test_bad_requests_are_user_errors_before_the_export_runs(infogan_dir, tmp_path, monkeypatch, fmt, out, message):
    import gankit.export

    (tmp_path / "file.txt").write_text("")
    monkeypatch.setattr(gankit.export, "torchscript_bytes", lambda *a: pytest.fail("exported before checking --out"))
    with pytest.raises(GankitError, match=message):
        export_generator(infogan_dir, fmt, tmp_path / out)


@pytest.mark.parametrize("name", ["generator", "config"])
def test_an_export_never_replaces_a_file_of_its_run(cgan_dir, monkeypatch, name):
    import gankit.export

    monkeypatch.setattr(gankit.export, "torchscript_bytes", lambda *a: pytest.fail("exported before checking --out"))
    before = (cgan_dir / f"{name}.json").read_bytes()
    with pytest.raises(GankitError, match=f"The input layout of --out .*{name}.json would overwrite a file that the "
                                          "run"):
        export_generator(cgan_dir, "torchscript", cgan_dir / name)  # its layout would be RUN/{name}.json
    assert (cgan_dir / f"{name}.json").read_bytes() == before


def test_onnx_without_onnxscript_says_what_to_install(infogan_dir, tmp_path, monkeypatch):
    import gankit.export

    monkeypatch.setattr(gankit.export.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(GankitError, match=r"pip install 'gankit\[export\]'"):
        export_generator(infogan_dir, "onnx", tmp_path / "g.onnx")


def test_missing_run_folder_is_a_user_error(tmp_path):
    with pytest.raises(GankitError, match="does not exist"):
        export_generator(tmp_path / "missing", "onnx", tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()


# --- the command line (needs `gankit export` in cli.py) ----------------------------------------
def test_cli_export_writes_the_file_and_its_layout(infogan_dir, tmp_path, capsys):
    out = tmp_path / "cli" / "g.pt"
    assert main(["export", str(infogan_dir), "--format", "torchscript", "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and sidecar_path(out).exists()
    assert str(out) in capsys.readouterr().out
    inferred = tmp_path / "cli" / "h.pth"  # no --format: the suffix names TorchScript, a zip archive
    assert main(["export", str(infogan_dir), "--out", str(inferred)]) == 0
    assert inferred.read_bytes()[:2] == b"PK"


def test_cli_export_of_a_missing_run_is_one_line_and_status_2(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error:") and "does not exist" in err and err.count("\n") == 1


@pytest.mark.filterwarnings("ignore:Using len to get tensor shape")  # the tracer's own notice of the bug
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_a_generator_that_pins_its_batch_size_is_refused(cgan_dir, tmp_path, monkeypatch, fmt):
    """A family reading len(z) would export a file that takes one batch size only: a bug in gankit,
    refused rather than written."""
    from gankit.models.gan import MLPGenerator

    def pinned_forward(self, z, labels=None):
        h = self.condition(z, labels) if self.condition is not None else z
        return self.net(h).view(len(z), *self.info.shape)  # len(): a Python int, frozen by tracing

    monkeypatch.setattr(MLPGenerator, "forward", pinned_forward)
    with pytest.raises(RuntimeError, match="The cgan generator fixes its batch size or image size when exported"):
        export_generator(cgan_dir, fmt, tmp_path / f"g.{fmt}")
    assert not list(tmp_path.iterdir())
