"""PNG pictures of the analysis results (matplotlib's Agg canvas; no pyplot global state)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.patches import Circle

from deeplab.analysis.erf import RAYS, Satellite, erf_center
from deeplab.analysis.gridding import Gridding, reach_counts
from deeplab.analysis.plotting import new_figure, save_figure


def save_erf_heatmap(
    erf: np.ndarray,
    path: str,
    log_scale: bool = False,
    radii: dict[float, float] | None = None,
    satellites: Sequence[Satellite] = (),
    title: str = "",
) -> None:
    """Heatmap of an ERF with its mass radii (dashed circles) and expected satellite taps.

    Expected taps of rates that still fit are marked with open squares, those that fall
    off the feature map are listed in the legend only.
    """
    figure = new_figure(7.0, 6.2)
    axes = figure.add_subplot()
    if log_scale:
        positive = erf[erf > 0]
        floor = max(float(positive.min()), float(erf.max()) * 1e-6)
        image = axes.imshow(np.maximum(erf, floor), cmap="magma",
                            norm=LogNorm(vmin=floor, vmax=float(erf.max())))
    else:
        image = axes.imshow(erf, cmap="magma", vmin=0.0)
    figure.colorbar(image, ax=axes, label="ERF mass per pixel" + (" (log)" if log_scale else ""))
    cy, cx = erf_center(erf.shape)
    for fraction, radius in (radii or {}).items():
        axes.add_patch(Circle((cx, cy), radius, fill=False, linestyle="--", linewidth=0.8,
                              color="#7fd4ff"))
        # Labelled at 60° below the horizontal, away from the satellites' 45° diagonals.
        axes.annotate(f"{fraction:.0%}", (cx + radius * 0.5, cy + radius * 0.866),
                      color="#7fd4ff", fontsize=8)
    for satellite in satellites:
        label = f"rate {satellite.rate}: ±{satellite.offset} px"
        if not satellite.inside:
            axes.plot([], [], " ", label=label + " (off the feature map)")
            continue
        ys = [cy + dy * satellite.offset for dy, _ in RAYS]
        xs = [cx + dx * satellite.offset for _, dx in RAYS]
        axes.scatter(xs, ys, s=120, facecolors="none", edgecolors="#39ff88", linewidths=0.9,
                     label=label)
    if satellites:
        axes.legend(loc="lower left", fontsize=7, framealpha=0.6)
    axes.set_xlim(-0.5, erf.shape[1] - 0.5)
    axes.set_ylim(erf.shape[0] - 0.5, -0.5)
    axes.set_title(title, fontsize=9)
    axes.set_xlabel("x (input px)")
    axes.set_ylabel("y (input px)")
    figure.tight_layout()
    save_figure(figure, path)


def save_gridding_picture(results: Sequence[Gridding], path: str, kernel_size: int = 3) -> None:
    """One panel per schedule: the input pixels it reaches (colour = number of paths)."""
    figure = new_figure(4.2 * len(results), 4.6)
    for index, result in enumerate(results, start=1):
        axes = figure.add_subplot(1, len(results), index)
        counts = reach_counts(result.rates, kernel_size).astype(float)
        reach = result.receptive_field // 2
        extent = (-reach - 0.5, reach + 0.5, reach + 0.5, -reach - 0.5)
        axes.imshow(np.zeros_like(counts), cmap="gray", vmin=0, vmax=4, extent=extent)
        shown = np.ma.masked_where(counts == 0, counts)
        axes.imshow(shown, cmap="viridis", norm=LogNorm(vmin=1, vmax=max(2.0, counts.max())),
                    extent=extent, interpolation="nearest")
        if result.hdc is None:
            verdict = "single layer"
        else:
            verdict = "HDC ok" if result.hdc.valid else "HDC fails"
        axes.set_title(
            f"rates {list(result.rates)}: {verdict}\n"
            f"RF {result.receptive_field}x{result.receptive_field}, "
            f"{result.coverage:.0%} of it reached", fontsize=9)
        axes.set_xlabel("dx (input px)")
        axes.set_ylabel("dy (input px)")
    figure.suptitle("Input pixels reached by stacked dilated convs (colour: number of paths, "
                    "log scale; black: never reached)",
                    fontsize=10)
    figure.tight_layout()
    save_figure(figure, path)
