"""The experiments' figures: means over seeds with error bars of one standard deviation.

Drawn with matplotlib's object interface on the Agg canvas, as ``training/plots.py`` does:
nothing here chooses a global backend, so a notebook's inline backend is left alone.
"""
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..system.files import atomic_write


def new_figure(panels, width=4.6, height=3.6):
    """A figure of ``panels`` axes side by side: ``(figure, [axes...])``."""
    figure = Figure(figsize=(width * panels, height))
    axes = figure.subplots(1, panels, squeeze=False)[0]
    figure.subplots_adjust(left=0.09 / panels ** 0.5, right=0.98, bottom=0.15, top=0.84,
                           wspace=0.32)
    return figure, list(axes)


def errorbar_line(axis, x, runs, label, **style):
    """Plot the mean over seeds of ``runs [seeds, len(x)]`` against ``x``, with error bars
    of one standard deviation."""
    runs = np.asarray(runs, dtype=float)
    spread = runs.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(runs.shape[1])
    axis.errorbar(x, runs.mean(axis=0), yerr=spread, label=label, capsize=3, marker="o",
                  markersize=4, **style)


def save(figure, path):
    FigureCanvasAgg(figure)
    with atomic_write(path) as file:
        figure.savefig(file, format="png", dpi=90)
    return path
