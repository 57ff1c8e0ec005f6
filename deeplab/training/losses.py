"""The original's loss: softmax cross-entropy with the ignore label and hard-pixel mining."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from deeplab.ops import resize_bilinear, resize_nearest


def label_weight_mask(labels: tf.Tensor, ignore_label: int, num_classes: int,
                      label_weights: float | Sequence[float] | None = 1.0) -> tf.Tensor:
    """Per-pixel weights: 0 for the ignore label, else ``label_weights[label]`` (or a float).

    The original's ``get_label_weight_mask`` (its tests: labels [0,4,1,3,2], ignore 4:
    0.5 → [0.5, 0, 0.5, 0.5, 0.5]; [0, .1, .2, .3, .4] → [0, 0, 0.1, 0.3, 0.2]).
    """
    if label_weights is None:
        raise ValueError("The type of label_weights is invalid: give a float or a list of "
                         "num_classes floats.")
    not_ignored = tf.cast(tf.not_equal(labels, ignore_label), tf.float32)
    if isinstance(label_weights, (int, float)):
        return not_ignored * float(label_weights)
    label_weights = [float(w) for w in label_weights]
    if len(label_weights) != num_classes:
        raise ValueError(f"Length of label_weights must be equal to num_classes "
                         f"({len(label_weights)} vs {num_classes}).")
    safe = tf.where(tf.equal(labels, ignore_label), tf.zeros_like(labels), labels)
    return not_ignored * tf.gather(tf.constant(label_weights, tf.float32), safe)


def hard_mining_fraction(step, top_k_percent_pixels: float,
                         hard_example_mining_step: int) -> tf.Tensor:
    """The original's ramp: from all pixels (1.0) at step 0 to ``top_k_percent_pixels``."""
    if hard_example_mining_step == 0:
        return tf.constant(top_k_percent_pixels, tf.float32)
    ratio = tf.minimum(1.0, tf.cast(step, tf.float32) / hard_example_mining_step)
    return ratio * top_k_percent_pixels + (1.0 - ratio)


def softmax_cross_entropy(
    logits: tf.Tensor,
    labels: tf.Tensor,
    num_classes: int,
    ignore_label: int = 255,
    label_weights: float | Sequence[float] = 1.0,
    top_k_percent_pixels: float = 1.0,
    hard_example_mining_step: int = 0,
    step=0,
    upsample_logits: bool = True,
) -> tf.Tensor:
    """Mean cross-entropy over the pixels that count (``add_softmax_cross_entropy_loss``).

    Args:
        logits: [N, h, w, C] at the head's stride (float32).
        labels: [N, H, W] or [N, H, W, 1] class ids with ``ignore_label`` for void.
        upsample_logits: True resizes the logits (bilinear, align corners) to the labels;
            False resizes the labels (nearest) to the logits, as the original's flag.
        top_k_percent_pixels, hard_example_mining_step, step: average only the hardest
            pixels, ramping from all pixels to the fraction over the mining steps.

    Returns:
        Sum of weighted pixel losses / number of pixels with non-zero weight (the
        original's SUM_BY_NONZERO_WEIGHTS; ignored pixels do not count).
    """
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 3:
        labels = labels[..., None]
    logits = tf.cast(tf.convert_to_tensor(logits), tf.float32)
    if upsample_logits:
        logits = resize_bilinear(logits, tf.shape(labels)[1:3])
    else:
        labels = resize_nearest(labels, tf.shape(logits)[1:3])
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    logits = tf.reshape(logits, [-1, num_classes])
    weights = label_weight_mask(labels, ignore_label, num_classes, label_weights)
    safe_labels = tf.where(tf.equal(labels, ignore_label), tf.zeros_like(labels), labels)
    pixel_losses = weights * tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=safe_labels, logits=logits)
    if top_k_percent_pixels == 1.0:
        count = tf.reduce_sum(tf.cast(weights > 0, tf.float32))
        return tf.math.divide_no_nan(tf.reduce_sum(pixel_losses), count)
    fraction = hard_mining_fraction(step, top_k_percent_pixels, hard_example_mining_step)
    k = tf.cast(fraction * tf.cast(tf.size(pixel_losses), tf.float32), tf.int32)
    top, _ = tf.nn.top_k(pixel_losses, k=k, sorted=True)
    count = tf.reduce_sum(tf.cast(tf.not_equal(top, 0.0), tf.float32))
    return tf.math.divide_no_nan(tf.reduce_sum(top), count)
