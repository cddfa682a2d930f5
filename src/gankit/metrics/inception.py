"""``inception``: the standard FID Inception-v3, read only from a file already on this machine.

The network is torch-fidelity's port of the TensorFlow graph that FID was defined with
(``pip install 'gankit[inception]'``); its weights are the 2015-12-05 file of pytorch-fid
(``pt_inception-2015-12-05-6726825d.pth``) or torch-fidelity (``weights-inception-...``).
gankit never downloads them: it looks at ``--inception-weights PATH``, then the
``GANKIT_INCEPTION_WEIGHTS`` variable, then the torch hub cache (``<hub>/checkpoints/``).
Features are the 2048-d pool layer; logits are the 1008 unbiased ones torch-fidelity uses for IS.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.metrics.features import FeatureExtractor, fingerprint_bytes, register_extractor

ENV_VAR = "GANKIT_INCEPTION_WEIGHTS"
FILE_NAMES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
LAYERS = ["2048", "logits_unbiased"]


def hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(path: Path | None = None) -> Path:
    """The weights file: the given path, else the environment variable, else the hub cache."""
    for given, source in ((path, "--inception-weights"), (os.environ.get(ENV_VAR), ENV_VAR)):
        if given:
            given = Path(given).expanduser()
            if not given.is_file():
                raise GankitError(f"{source} points to {given}, which is not a file; give the path of "
                                  f"{FILE_NAMES[0]}.")
            return given
    for name in FILE_NAMES:
        if (hub_checkpoints() / name).is_file():
            return hub_checkpoints() / name
    raise GankitError(f"The FID Inception weights are not on this machine; put {FILE_NAMES[0]} in "
                      f"{hub_checkpoints()} or pass its path with --inception-weights or {ENV_VAR}.")


def read_state_dict(path: Path) -> tuple[dict[str, Tensor], bytes]:
    """The file's tensors (unpickled with weights_only, so no code runs) and its bytes."""
    try:
        raw = path.read_bytes()
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except OSError as e:
        raise GankitError(f"Cannot read {path} ({e.strerror}); check the Inception weights path.") from None
    except Exception as e:  # torch raises several types for files that are not weights
        raise GankitError(f"{path} is not a PyTorch weights file ({type(e).__name__}); "
                          f"download {FILE_NAMES[0]} again.") from None
    if not isinstance(state, dict):
        raise GankitError(f"{path} holds a {type(state).__name__}, not a state dict; give {FILE_NAMES[0]}.")
    return state, raw


def build_network(state: dict[str, Tensor], path: Path) -> torch.nn.Module:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise GankitError("--features inception needs torch-fidelity; install it with "
                          "pip install 'gankit[inception]'.") from None
    # torch-fidelity unpickles its weights file without weights_only; giving it a buffer
    # re-saved from the checked tensors means it never unpickles anything else.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    try:
        return FeatureExtractorInceptionV3("inception-v3-compat", LAYERS, feature_extractor_weights_path=buffer)
    except RuntimeError as e:
        raise GankitError(f"{path} does not hold the FID Inception-v3 weights ({str(e).splitlines()[0]}); "
                          f"give {FILE_NAMES[0]}.") from None


class InceptionExtractor(FeatureExtractor):
    def check_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise GankitError(f"The inception features read grayscale or RGB images, not samples of shape {shape}.")

    def prepare(self, images: Tensor) -> Tensor:
        # The network takes 8-bit RGB, as FID is defined on saved images.
        pixels = images.add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
        return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels


@register_extractor("inception")
def load_inception(weights: Path | None = None) -> InceptionExtractor:
    path = find_weights(weights)
    state, raw = read_state_dict(path)
    return InceptionExtractor("inception", build_network(state, path), fingerprint_bytes(raw), batch_size=100)
