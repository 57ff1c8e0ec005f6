"""Whole-image inference helpers: resize to fit, pad, predict, crop, resize back."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # TensorFlow is imported where it runs, so this module loads fast
    import tensorflow as tf


def _box(canvas) -> tuple[int, int]:
    return (canvas, canvas) if isinstance(canvas, int) else (int(canvas[0]), int(canvas[1]))


def fit_size(height: int, width: int, canvas) -> tuple[int, int]:
    """The largest size with the image's aspect ratio inside ``canvas`` (int or (h, w)).

    For a square canvas the longer side becomes ``canvas``, as in the original demo.
    """
    box_h, box_w = _box(canvas)
    scale = min(box_h / height, box_w / width)
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def segment_whole_image(
    predict_labels: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    canvas,
    pad_value=127.5,
) -> np.ndarray:
    """Labels [H, W] for an RGB image of any size with a fixed-size predictor.

    The image is resized (bilinear) to fit ``canvas`` (int or (h, w)), padded bottom/right
    with ``pad_value`` (the backbone's mean pixel, a scalar or per channel; ~0 after
    preprocessing),
    ``predict_labels`` maps the uint8 canvas to labels of the canvas size, and the valid
    window is resized back (nearest), as the original's export and vis did.
    """
    height, width = image.shape[:2]
    box_h, box_w = _box(canvas)
    new_h, new_w = fit_size(height, width, (box_h, box_w))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    padded = np.full((box_h, box_w, 3), pad_value, dtype=np.float32)
    padded[:new_h, :new_w] = resized
    labels = np.asarray(predict_labels(np.round(padded).astype(np.uint8)))[:new_h, :new_w]
    # The smallest integer type: the labels of a large photo are as many as its pixels.
    dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
    return cv2.resize(labels.astype(dtype), (width, height), interpolation=cv2.INTER_NEAREST)


def aligned_size(size, stride: int):
    """Smallest ``k * stride + 1`` >= ``size``: the sizes whose features align with pixels.

    The original asked users for an ``eval_crop_size`` of this form; padding to it
    internally lets any image size be evaluated (works on ints and int32 tensors).
    """
    return (size - 1 + stride - 1) // stride * stride + 1


def pad_with_mean(images: tf.Tensor, height, width, mean) -> tf.Tensor:
    """Pads [N, h, w, 3] bottom/right to (height, width) with the mean pixel (a scalar or per
    channel), as the original padded eval crops; traceable."""
    import tensorflow as tf

    shape = tf.shape(images)
    mean = tf.cast(mean, images.dtype)
    paddings = [[0, 0], [0, height - shape[1]], [0, width - shape[2]], [0, 0]]
    return tf.pad(images - mean, paddings) + mean


def predict_probabilities(model, images, scales=(1.0,), add_flipped_images: bool = False):
    """Class probabilities [N, H, W, C] for float 0-255 images of any size (TF, traceable).

    An image within the model's crop size is padded (bottom/right, mean pixel) to exactly
    the crop, as the original's eval; a larger one to the next aligned size, or one
    without a crop size to its aligned size. Each scale resizes that canvas by the
    original's ``scale_dimension`` (bilinear, align corners) and runs the network with the
    image pooling sized from the scaled crop (:meth:`DeepLab.scaled_input_model`), a
    flipped pass flips the whole canvas, and the logits are resized back to the canvas
    (through the scale-1 logits grid for scales below 1) before ONE softmax: the
    original's ``predict_labels_multi_scale`` on its padded images. Probabilities are
    averaged over scales and flips (the original applied a second softmax to the
    average) and cropped to the image.

    With ``prediction_with_upsampled_logits=False`` in the model's config and a single
    scale without flips, the softmax is taken at the logits' stride and upsampled
    (nearest, align corners) to the padded input, so the argmax is the original's
    low-resolution argmax; multi-scale inference always upsamples, as the original's.
    """
    import tensorflow as tf

    from deeplab.ops import resize_bilinear, resize_nearest, scale_dimension, scaled_size

    config = model.config
    if config.image_pyramid and (tuple(scales) != (1.0,) or add_flipped_images):
        raise ValueError(
            f"image_pyramid {config.image_pyramid} merges logits in single-scale inference; "
            "with several inference scales or flipped images (which average probabilities "
            "over scales, as the original's multi-scale inference) leave --image_pyramid out")
    low_resolution = (not config.prediction_with_upsampled_logits
                      and tuple(scales) == (1.0,) and not add_flipped_images)
    stride = config.logits_stride
    # Per-channel mean pixel (ImageNet mean for ResNet-v1): pad the mean-subtracted image with 0.
    mean = tf.constant(config.backbone_spec.mean_pixel, images.dtype)
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    if config.crop_size:
        # An image within the crop runs at exactly the crop, as the original (a crop such
        # as 512 is not of the aligned form, and padding it further would make the
        # crop-sized image pooling cover less than the whole map).
        crop_h, crop_w = config.crop_size
        fits = tf.logical_and(height <= crop_h, width <= crop_w)
        canvas = pad_with_mean(images, tf.where(fits, crop_h, height),
                               tf.where(fits, crop_w, width), mean)
    else:
        canvas = images
    canvas_size = tf.shape(canvas)[1:3]
    total, count = 0.0, 0
    for scale in scales:
        scaled = canvas if scale == 1.0 else resize_bilinear(canvas, scaled_size(canvas_size,
                                                                                  scale))
        network = model.scaled_input_model(scale)
        for flip in (False, True) if add_flipped_images else (False,):
            x = tf.reverse(scaled, [2]) if flip else scaled
            h, w = tf.shape(x)[1], tf.shape(x)[2]
            target_h, target_w = aligned_size(h, stride), aligned_size(w, stride)
            if config.crop_size:
                scaled_h, scaled_w = (scale_dimension(c, scale) for c in config.crop_size)
                target_h = tf.where(fits, scaled_h, tf.maximum(target_h, scaled_h))
                target_w = tf.where(fits, scaled_w, tf.maximum(target_w, scaled_w))
            x = pad_with_mean(x, target_h, target_w, mean)
            if low_resolution:
                low = tf.nn.softmax(tf.cast(model.head_logits_model()(x, training=False),
                                            tf.float32))
                return resize_nearest(low, tf.stack([target_h, target_w]))[:, :height, :width]
            logits = network(x, training=False)[:, :h, :w]
            if flip:
                logits = tf.reverse(logits, [2])
            if scale < 1.0:
                # The original's multi_scale_logits first resizes a scale's logits to
                # the scale-1 logits grid (of max(1, scale)), then to the image.
                logits = resize_bilinear(logits, scaled_size(canvas_size, 1.0 / stride))
            if scale != 1.0:
                logits = resize_bilinear(logits, canvas_size)
            total += tf.nn.softmax(logits)
            count += 1
    return (total / count)[:, :height, :width]
