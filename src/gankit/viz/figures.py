"""Figures of a GAN on vector data, drawn from plain arrays (no models, no training state).

``figure_1d`` is the GAN paper's Figure 1 (Goodfellow et al. 2014): the data density (black,
dotted), the generator's density (green), the discriminator D(x) (blue, dashed) and the
optimal D*(x) = p_data / (p_data + p_g) (red, dash-dot) that D should approach.
``figure_2d`` shows generated samples over the data, with D's output as a filled contour map
behind them, so one sees where D pushes the generator.

Figures are built on matplotlib's object API with the Agg canvas: no pyplot state, no display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gankit.atomic import atomic_write_encoded

SIZE_INCHES, DPI = (5.0, 4.5), 100  # every frame the same size, so frames make one GIF


def new_figure() -> tuple[Figure, object]:
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def figure_1d(x: np.ndarray, p_data: np.ndarray, p_g: np.ndarray, d: np.ndarray, d_star: np.ndarray,
              title: str = "") -> Figure:
    """Densities on the left axis, D and D* (probabilities) on the right one, over grid ``x``."""
    figure, ax = new_figure()
    x = np.ravel(x)
    ax.plot(x, p_data, "k:", lw=2, label="data density")
    ax.plot(x, p_g, "g-", lw=1.5, label="generator density")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_ylim(bottom=0)
    right = ax.twinx()
    right.plot(x, d, "b--", lw=1.5, label="D(x)")
    right.plot(x, d_star, "r-.", lw=1, label="D*(x)")
    right.set_ylim(0, 1.05)
    right.set_ylabel("discriminator")
    lines = ax.get_lines() + right.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper left", fontsize=8)
    ax.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def figure_2d(fake: np.ndarray, real: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray,
              d_output: np.ndarray, title: str = "") -> Figure:
    """Samples (orange) over data (grey) with D's output on the grid as a contour map."""
    figure, ax = new_figure()
    contour = ax.contourf(grid_x, grid_y, d_output, levels=20, cmap="coolwarm", alpha=0.8)
    figure.colorbar(contour, ax=ax, label="D's raw output (a logit for cross-entropy)")
    ax.scatter(real[:, 0], real[:, 1], s=2, c="0.3", alpha=0.3, linewidths=0, label="data")
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="orange", alpha=0.7, linewidths=0, label="generated")
    # Fixed to the grid: generated points far outside would otherwise rescale every frame.
    ax.set_xlim(grid_x.min(), grid_x.max())
    ax.set_ylim(grid_y.min(), grid_y.max())
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8, markerscale=4)
    ax.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def plot_window(points: np.ndarray, margin: float = 0.25, resolution: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """A square grid around ``points`` (N, 2), ``margin`` of their extent wider on each side."""
    low, high = points.min(0), points.max(0)
    centre, half = (low + high) / 2, (high - low).max() * (0.5 + margin)
    axis = np.linspace(-half, half, resolution)
    return np.meshgrid(centre[0] + axis, centre[1] + axis)


def save_png(figure: Figure, path: Path) -> None:
    """Write ``figure`` as a PNG, atomically (a reader never sees half a file)."""
    atomic_write_encoded(path, lambda f: figure.savefig(f, dpi=DPI, format="png"))
