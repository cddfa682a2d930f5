"""Model families: one module each, found by name through the registry."""

from gankit.models import cgan, gan  # noqa: F401  (register the families)
from gankit.models import acgan, dcgan  # noqa: F401  (register the convolutional families)
from gankit.models import infogan  # noqa: F401  (register InfoGAN)
from gankit.models import srgan  # noqa: F401  (register SRResNet and SRGAN)
from gankit.models.base import GANConfig, GANFamily, Generator, StepContext
from gankit.models.registry import families, get_family

__all__ = ["GANConfig", "GANFamily", "Generator", "StepContext", "families", "get_family"]
