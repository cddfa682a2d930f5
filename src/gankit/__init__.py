"""gankit: train, sample, evaluate and serve generative adversarial networks."""

from gankit.errors import GankitError
from gankit.pipeline import GeneratorPipeline, load

__version__ = "0.1.0"
__all__ = ["GankitError", "GeneratorPipeline", "load", "__version__"]
