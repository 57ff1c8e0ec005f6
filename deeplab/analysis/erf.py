"""Effective receptive field (ERF) of a segmentation model, and the ASPP satellite pattern.

The ERF of the centre output pixel (papers.md §2.4, the OpenERF recipe applied to
segmentation): s = the centre logit averaged over classes (or one class); g = ds/dx,
averaged over RGB; keep the positive part (or |g|, Luo et al. 2016); sum over N images;
normalise to sum 1. A 3x3 atrous branch of rate r at output stride OS connects the
centre to input regions (±r·OS, 0), (0, ±r·OS), (±r·OS, ±r·OS): eight "satellites" per
rate, which vanish once r > (ceil(S/OS) - 1) / 2 (papers.md §2.5, §7.6).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from deeplab.analysis.atrous_rates import max_useful_rate

if TYPE_CHECKING:
    import keras

# TensorFlow is imported inside the functions that run a model, so the pattern analysis
# and the pictures (scripts/hdc.py) load without it.

MODES = ("positive", "abs")
# The eight rays from the centre (dy, dx): the satellites of a 3x3 atrous tap.
RAYS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


def localize_backbone(model: keras.Model) -> int:
    """Keeps only the centre tap of every backbone conv after the first; returns how many.

    The backbone's own receptive field then shrinks to the stem's kernel around each
    feature pixel's position, so the ERF shows the head's taps (the ASPP satellites) as
    sharp dots instead of blurred by a wide backbone ERF. Weights change in place: use
    this on a model built for the analysis only.
    """
    import keras

    backbone = getattr(model, "backbone", model)
    convs = [
        layer for layer in backbone._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
    ]
    changed = 0
    for layer in convs[1:]:  # The stem keeps its kernel: each feature pixel sees a patch.
        kh, kw = layer.kernel.shape[:2]
        if kh * kw > 1:
            centre_only = np.zeros(layer.kernel.shape, layer.kernel.dtype)
            centre_only[kh // 2, kw // 2] = np.asarray(layer.kernel)[kh // 2, kw // 2]
            layer.kernel.assign(centre_only)
            changed += 1
    return changed


def compute_erf(
    model: keras.Model,
    images: Iterable[np.ndarray],
    class_index: int | None = None,
    mode: str = "positive",
    jit_compile: bool = False,
) -> np.ndarray:
    """ERF of the centre output pixel, averaged over ``images`` and normalised to sum 1.

    Args:
        model: maps ``[N, H, W, 3]`` images (0-255) to ``[N, Ho, Wo, C]`` logits.
        images: ``[H, W, 3]`` arrays of one size (see ``deeplab.analysis.images``).
        class_index: the class whose centre logit is differentiated; None averages
            the logits over classes.
        mode: "positive" keeps the positive part of the gradient (OpenERF), "abs" its
            magnitude (Luo et al.).
        jit_compile: compute the gradient under XLA (slower on the CPU; the same result).

    Returns:
        ``[H, W]`` float64 map summing to 1.
    """
    if mode not in MODES:
        raise ValueError(f"compute_erf: mode must be one of {MODES}, got {mode!r}.")
    import tensorflow as tf

    gradient = _gradient_function(model, class_index, jit_compile)
    total = None
    count = 0
    for image in images:
        g = gradient(tf.constant(np.asarray(image, np.float32)[None])).numpy()[0]
        g = np.maximum(g, 0.0) if mode == "positive" else np.abs(g)
        total = g.astype(np.float64) if total is None else total + g
        count += 1
    if count == 0:
        raise ValueError("compute_erf: no images.")
    mass = total.sum()
    if mass <= 0:
        raise ValueError("compute_erf: the gradient is zero everywhere (dead model?).")
    return total / mass


def _gradient_function(model, class_index, jit_compile):
    import tensorflow as tf

    @tf.function(jit_compile=jit_compile)
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = tf.cast(model(x, training=False), tf.float32)
            centre = logits[:, logits.shape[1] // 2, logits.shape[2] // 2, :]
            if class_index is not None and not 0 <= class_index < centre.shape[-1]:
                raise ValueError(f"class_index {class_index} is not one of the model's "
                                 f"{centre.shape[-1]} classes.")
            s = tf.reduce_mean(centre, -1) if class_index is None else centre[:, class_index]
            # Images are independent in inference mode: d(sum)/dx is each image's own ds/dx.
            total = tf.reduce_sum(s)
        return tf.reduce_mean(tape.gradient(total, x), axis=-1)

    return gradient


def erf_center(shape: Sequence[int]) -> tuple[int, int]:
    """The input pixel of the centre output pixel: ``(H // 2, W // 2)``.

    For DeepLab's align-corners logits this is exact at any output stride when the size
    is ``k * OS + 1`` (513 → 256 at OS 16).
    """
    return shape[0] // 2, shape[1] // 2


def mass_radii(
    erf: np.ndarray, fractions: Sequence[float] = (0.5, 0.9, 0.99), center=None
) -> dict[float, float]:
    """Smallest radius (Euclidean, px) around the centre holding each fraction of the mass."""
    cy, cx = center or erf_center(erf.shape)
    yy, xx = np.indices(erf.shape)
    radius = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(radius, kind="stable")
    cumulative = np.cumsum(erf.ravel()[order]) / erf.sum()
    return {
        f: float(radius[order][min(np.searchsorted(cumulative, f), radius.size - 1)])
        for f in fractions
    }


def ray_profiles(erf: np.ndarray, half_width: int = 4, center=None) -> list[np.ndarray]:
    """ERF mass in a ``(2w+1)²`` window at Chebyshev offset d = 0, 1, ... along each ray.

    One profile per entry of :data:`RAYS`, as long as the window stays in the image.
    """
    cy, cx = center or erf_center(erf.shape)
    height, width = erf.shape
    integral = np.zeros((height + 1, width + 1))
    integral[1:, 1:] = erf.cumsum(0).cumsum(1)
    profiles = []
    for dy, dx in RAYS:
        limit = min(
            _room(cy, height, dy, half_width), _room(cx, width, dx, half_width)
        )
        d = np.arange(limit + 1)
        top, left = cy + dy * d - half_width, cx + dx * d - half_width
        bottom, right = top + 2 * half_width + 1, left + 2 * half_width + 1
        profiles.append(
            integral[bottom, right] - integral[top, right] - integral[bottom, left]
            + integral[top, left]
        )
    return profiles


def _room(center: int, size: int, step: int, half_width: int) -> int:
    """How far the window centre may move by ``step`` per unit before leaving the image."""
    if step > 0:
        return size - 1 - half_width - center
    if step < 0:
        return center - half_width
    return size  # This axis does not move; the other one limits the ray.


def find_satellites(
    erf: np.ndarray, half_width: int = 4, contrast: float = 4.0, center=None
) -> list[list[int]]:
    """Offsets (px) of the satellite peaks along each ray of :data:`RAYS`.

    A peak is where the window profile (:func:`ray_profiles`, windows of 2w+1 px) first
    reaches a local maximum, at least ``contrast`` times every profile value on both
    sides beyond the blob (w+1 to 4w+1 px before, 3w+1 to 5w+1 px after the first top
    index, which clears a flat top as wide as the window). Comparing with the
    neighbourhood rather than a global level rejects the central blob (it falls
    monotonically) and a background lattice (image pooling reaches every feature pixel,
    one dot per output-stride cell). The offset reported is where the ERF on the ray
    itself peaks within the window.
    """
    w = half_width
    peaks = []
    for window, line in zip(ray_profiles(erf, w, center), ray_profiles(erf, 0, center)):
        found = []
        for d in range(1, len(window)):
            if window[d] < window[max(0, d - w) : d + w + 1].max() or window[d] <= window[d - 1]:
                continue
            left = window[max(0, d - 4 * w - 1) : max(0, d - w)]
            right = window[d + 3 * w + 1 : d + 5 * w + 2]
            if left.size and right.size and window[d] >= contrast * max(left.max(), right.max()):
                segment = line[d : d + 2 * w + 1]
                top = np.flatnonzero(segment >= 0.999 * segment.max())
                found.append(d + int(top[0] + top[-1]) // 2)  # the middle of a flat top
        peaks.append(found)
    return peaks


@dataclasses.dataclass(frozen=True)
class Satellite:
    """Where the satellites of one atrous rate land: ``offset = rate · OS`` input pixels."""

    rate: int
    offset: int
    inside: bool


def expected_satellites(
    rates: Sequence[int], output_stride: int, input_size: Sequence[int]
) -> list[Satellite]:
    """Satellite offsets of ``rates``; ``inside`` is False once the rate degenerates."""
    r_max = max_useful_rate(min(input_size), output_stride)
    return [Satellite(int(r), int(r) * output_stride, int(r) <= r_max) for r in rates]
