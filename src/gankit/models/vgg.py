"""The VGG19 feature maps of SRGAN's perceptual loss, from a weights file on disk.

torchvision's ``vgg19`` builds the network; its ImageNet weights (``vgg19-dcbb9e9d.pth``, the
file torchvision itself downloads) are read from, in order: ``model.vgg_weights`` (the
``--vgg-weights`` flag), ``$GANKIT_VGG19``, then the torch hub cache
(``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``). Nothing is
downloaded: when the file is absent, the error says where to put it.

Layers as in the SRGAN paper: ``vgg22`` is the activation of the 2nd convolution before the
2nd max-pooling (relu2_2), ``vgg54`` that of the 4th convolution before the 5th (relu5_4). The
paper rescales the feature maps by 1/12.75 so that the loss is on the scale of a pixel MSE.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from gankit.errors import GankitError

WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"
WEIGHTS_URL = f"https://download.pytorch.org/models/{WEIGHTS_FILE}"
ENV_VARIABLE = "GANKIT_VGG19"
LAYER_ENDS = {"vgg22": 9, "vgg54": 36}  # len(vgg19.features[:end]) ends at relu2_2 / relu5_4
FEATURE_SCALE = 1 / 12.75
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def hub_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def locate_weights(path: str | Path | None = None) -> Path:
    """The VGG19 weights file, or a GankitError saying where to put it."""
    candidates = [Path(p).expanduser() for p in (path, os.environ.get(ENV_VARIABLE)) if p]
    for candidate in candidates:
        if not candidate.is_file():
            state = "is a folder" if candidate.is_dir() else "does not exist"
            raise GankitError(f"VGG19 weights file {candidate} {state}; give the path of {WEIGHTS_FILE}.")
        return candidate
    if hub_weights_path().is_file():
        return hub_weights_path()
    raise GankitError(
        f"The perceptual loss needs torchvision's VGG19 weights ({WEIGHTS_FILE}, from {WEIGHTS_URL}); put the "
        f"file at {hub_weights_path()} or pass --vgg-weights PATH (or set ${ENV_VARIABLE}), or train with "
        "--set model.content=mse, which needs no weights.")


class VGGFeatures(nn.Module):
    """Images in [-1, 1] -> VGG19 feature maps at ``layer``, scaled by 1/12.75; frozen."""

    def __init__(self, layer: str, weights: str | Path | None = None):
        super().__init__()
        from torchvision.models import vgg19

        if layer not in LAYER_ENDS:
            raise GankitError(f"Unknown VGG layer {layer!r}; choose one of {', '.join(LAYER_ENDS)}.")
        path = locate_weights(weights)
        # Only the convolutions up to the chosen layer: the dense layers (120M of VGG19's 143M
        # weights) are never used, so they are neither built nor loaded.
        self.features = vgg19(weights=None).features[:LAYER_ENDS[layer]]
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only, no code
            prefix = "features."
            self.features.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)
                                           and int(k[len(prefix):].split(".")[0]) < LAYER_ENDS[layer]})
        except Exception as e:  # torch raises several types for a damaged or foreign file
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if reason.startswith("Weights only load failed"):  # torch's advice to unpickle it would run its code
                reason = "it holds more than tensors"
            raise GankitError(f"{path} is not torchvision's VGG19 weights file {WEIGHTS_FILE} ({reason}); "
                              f"download it again from {WEIGHTS_URL}.") from None
        self.features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "VGGFeatures":
        return super().train(False)  # a fixed measuring instrument, never in training mode

    def forward(self, images: Tensor) -> Tensor:
        x = ((images + 1) / 2 - self.mean) / self.std
        return self.features(x) * FEATURE_SCALE
