"""Pictures of training on vector data: the GAN paper's 1-D figure, 2-D samples over D's
output, and a GIF of the frames over training."""

from gankit.viz.animation import write_gif
from gankit.viz.figures import figure_1d, figure_2d, plot_window, save_png

__all__ = ["figure_1d", "figure_2d", "plot_window", "save_png", "write_gif"]
