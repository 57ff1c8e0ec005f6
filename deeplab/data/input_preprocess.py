"""The original's preprocessing (`core/preprocess_utils.py`, `input_preprocess.py`) in TF2.

Same operations, order and rounding: resize-to-range with align_corners, random scale from a
min/max/step grid, bottom/right padding with the mean pixel and the ignore label, random crop,
joint left-right flip. Each random op also takes an optional stateless `seed` (shape [2]) so the
input pipeline can be made deterministic; without it the ops use TF's global random state like
the original.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import tensorflow as tf

from deeplab.ops import resize_bilinear, resize_nearest

_PROB_OF_FLIP = 0.5


def _uniform(shape, seed, minval, maxval, dtype):
    if seed is None:
        return tf.random.uniform(shape, minval=minval, maxval=maxval, dtype=dtype)
    return tf.random.stateless_uniform(shape, seed=seed, minval=minval, maxval=maxval,
                                       dtype=dtype)


def resolve_shape(tensor: tf.Tensor, rank: int | None = None) -> list:
    """The static dims where known, dynamic scalars elsewhere."""
    if rank is not None:
        shape = tensor.get_shape().with_rank(rank).as_list()
    else:
        shape = tensor.get_shape().as_list()
    if None in shape:
        dynamic = tf.shape(tensor)
        shape = [dynamic[i] if dim is None else dim for i, dim in enumerate(shape)]
    return shape


def flip_dim(tensor_list: Sequence[tf.Tensor], prob: float = 0.5, dim: int = 1,
             seed: tf.Tensor | None = None) -> list[tf.Tensor]:
    """Flips every tensor along `dim` with probability `prob`, all or none.

    Returns:
      The (possibly) flipped tensors followed by the boolean `is_flipped`.
    """
    is_flipped = tf.less_equal(_uniform([], seed, 0.0, 1.0, tf.float32), prob)
    tensors = [tf.convert_to_tensor(t) for t in tensor_list]
    outputs = [tf.cond(is_flipped, lambda t=t: tf.reverse(t, [dim]), lambda t=t: t)
               for t in tensors]
    return outputs + [is_flipped]


def pad_to_bounding_box(image: tf.Tensor, offset_height, offset_width, target_height,
                        target_width, pad_value) -> tf.Tensor:
    """Pads a [H,W,C] or [N,H,W,C] image with `pad_value` to the target size at the offsets.

    Raises:
      ValueError: for a statically known rank other than 3 or 4.
      tf.errors.InvalidArgumentError: when the target is smaller than the image or the offsets
        do not fit ("target_width must be >= width", "target_height must be >= height",
        "target size not possible with the given target offsets").
    """
    image = tf.convert_to_tensor(image, name="image")
    original_dtype = image.dtype
    if original_dtype not in (tf.float32, tf.float64):
        image = tf.cast(image, tf.int32)  # Room for pad values beyond the input dtype's range.
    rank = image.shape.rank
    if rank is not None and rank not in (3, 4):
        raise ValueError(f"Wrong image tensor rank [Expected] [Actual]: [3 or 4] [{rank}]")
    if rank is None:
        tf.debugging.Assert(
            tf.logical_or(tf.equal(tf.rank(image), 3), tf.equal(tf.rank(image), 4)),
            ["Wrong image tensor rank [Expected] [Actual]", tf.rank(image)])
        rank = 3
    batched = rank == 4
    if not batched:
        image = tf.expand_dims(image, 0)
    shape = tf.shape(image)
    height, width = shape[1], shape[2]
    target_height = tf.convert_to_tensor(target_height, tf.int32)
    target_width = tf.convert_to_tensor(target_width, tf.int32)
    after_width = target_width - offset_width - width
    after_height = target_height - offset_height - height
    checks = [
        tf.debugging.assert_greater_equal(target_width, width,
                                          message="target_width must be >= width"),
        tf.debugging.assert_greater_equal(target_height, height,
                                          message="target_height must be >= height"),
        tf.debugging.assert_equal(
            tf.logical_and(after_width >= 0, after_height >= 0), True,
            message="target size not possible with the given target offsets"),
    ]
    with tf.control_dependencies(checks):
        paddings = tf.stack([[0, 0], [offset_height, after_height],
                             [offset_width, after_width], [0, 0]])
    pad_value = tf.convert_to_tensor(pad_value)
    if pad_value.shape.rank == 0:
        # A scalar pads directly: exact, and cheaper than subtract / pad / add.
        padded = tf.pad(image, paddings, constant_values=tf.cast(pad_value, image.dtype))
    else:
        pad_value = tf.cast(pad_value, image.dtype)
        padded = tf.pad(image - pad_value, paddings) + pad_value
    if not batched:
        padded = tf.squeeze(padded, [0])
    return tf.cast(padded, original_dtype)


def _crop(image, offset_height, offset_width, crop_height, crop_width):
    original_shape = tf.shape(image)
    tf.debugging.assert_rank(image, 3, message="Rank of image must be equal to 3.")
    cropped_shape = tf.stack([crop_height, crop_width, original_shape[2]])
    tf.debugging.assert_equal(
        tf.logical_and(original_shape[0] >= crop_height, original_shape[1] >= crop_width), True,
        message="Crop size greater than the image size.")
    offsets = tf.cast(tf.stack([offset_height, offset_width, 0]), tf.int32)
    return tf.reshape(tf.slice(image, offsets, cropped_shape), cropped_shape)


def random_crop(image_list: Sequence[tf.Tensor], crop_height, crop_width,
                seed: tf.Tensor | None = None) -> list[tf.Tensor]:
    """Crops the same random window out of every [H,W,C] tensor of the list.

    Raises:
      ValueError: for an empty list.
      tf.errors.InvalidArgumentError: "Crop size greater than the image size." and
        "Wrong height for tensor" / "Wrong width for tensor" when the sizes differ.
    """
    if not image_list:
        raise ValueError("Empty image_list.")
    shapes = [tf.shape(image) for image in image_list]
    height, width = shapes[0][0], shapes[0][1]
    tf.debugging.assert_equal(
        tf.logical_and(height >= crop_height, width >= crop_width), True,
        message="Crop size greater than the image size.")
    for i, shape in enumerate(shapes[1:], start=1):
        tf.debugging.assert_equal(shape[0], height,
                                  message=f"Wrong height for tensor {i} [expected][actual]")
        tf.debugging.assert_equal(shape[1], width,
                                  message=f"Wrong width for tensor {i} [expected][actual]")
    if seed is not None:
        seed_h, seed_w = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    else:
        seed_h = seed_w = None
    offset_height = _uniform([], seed_h, 0, height - crop_height + 1, tf.int32)
    offset_width = _uniform([], seed_w, 0, width - crop_width + 1, tf.int32)
    return [_crop(image, offset_height, offset_width, crop_height, crop_width)
            for image in image_list]


def get_random_scale(min_scale_factor: float, max_scale_factor: float, step_size: float,
                     seed: tf.Tensor | None = None) -> tf.Tensor:
    """A random scale: uniform over the `linspace(min, max)` grid, or over [min, max) if step 0.

    Raises:
      ValueError: if min < 0 or min > max.
    """
    if min_scale_factor < 0 or min_scale_factor > max_scale_factor:
        raise ValueError("Unexpected value of min_scale_factor.")
    if min_scale_factor == max_scale_factor:
        return tf.cast(min_scale_factor, tf.float32)
    if step_size == 0:
        return _uniform([1], seed, min_scale_factor, max_scale_factor, tf.float32)
    num_steps = int((max_scale_factor - min_scale_factor) / step_size + 1)
    scale_factors = tf.linspace(float(min_scale_factor), float(max_scale_factor), num_steps)
    # The original shuffles the grid and takes the first entry: a uniform pick, as here.
    return scale_factors[_uniform([], seed, 0, num_steps, tf.int32)]


def get_label_resize_method(label: tf.Tensor) -> str:
    """Nearest neighbour for integer labels, bilinear for float (soft) labels."""
    if label.dtype.is_integer:
        return "nearest"
    if label.dtype.is_floating:
        return "bilinear"
    raise ValueError("Label type must be either integer or float.")


def _resize(images: tf.Tensor, size, method: str) -> tf.Tensor:
    """align_corners=True resize of [H,W,C] or [N,H,W,C], as the original's TF1 resizes."""
    squeeze = images.shape.rank == 3
    if squeeze:
        images = tf.expand_dims(images, 0)
    if method == "nearest":
        out = resize_nearest(images, size)
    else:  # float32 out whatever the input type, as TF1's resize_bilinear
        out = resize_bilinear(tf.cast(images, tf.float32), size)
    return tf.squeeze(out, [0]) if squeeze else out


def randomly_scale_image_and_label(image: tf.Tensor, label: tf.Tensor | None = None,
                                   scale=1.0) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Resizes image (bilinear) and label (nearest) to floor(H*scale) x floor(W*scale)."""
    if isinstance(scale, (int, float)) and scale == 1.0:
        return image, label
    shape = tf.shape(image)
    new_dim = tf.cast(tf.cast([shape[0], shape[1]], tf.float32) * tf.reshape(scale, []),
                      tf.int32)
    image = _resize(image, new_dim, "bilinear")
    if label is not None:
        label = _resize(label, new_dim, get_label_resize_method(label))
    return image, label


def resize_to_range(image: tf.Tensor, label: tf.Tensor | None = None, min_size=None,
                    max_size=None, factor=None, keep_aspect_ratio: bool = True,
                    label_layout_is_chw: bool = False) -> list[tf.Tensor | None]:
    """Resizes so the short side is `min_size` unless the long side would exceed `max_size`.

    With `factor`, `max_size` is first lowered to ``max_size - (max_size - 1) % factor`` and the
    output dims are rounded up to ``k * factor + 1``. Image bilinear, label nearest, both with
    align_corners. Returns [resized_image, resized_label or None].
    """
    min_size = tf.cast(min_size, tf.float32)
    if max_size is not None:
        max_size = tf.cast(max_size, tf.float32)
        if factor is not None:
            max_size = max_size - tf.math.floormod(max_size - 1, float(factor))
    orig_height, orig_width, _ = resolve_shape(image, rank=3)
    orig_height = tf.cast(orig_height, tf.float32)
    orig_width = tf.cast(orig_width, tf.float32)
    orig_min_size = tf.minimum(orig_height, orig_width)
    large_scale = min_size / orig_min_size
    large_size = tf.stack([tf.cast(tf.floor(orig_height * large_scale), tf.int32),
                           tf.cast(tf.floor(orig_width * large_scale), tf.int32)])
    new_size = large_size
    if max_size is not None:
        small_scale = max_size / tf.maximum(orig_height, orig_width)
        small_size = tf.stack([tf.cast(tf.floor(orig_height * small_scale), tf.int32),
                               tf.cast(tf.floor(orig_width * small_scale), tf.int32)])
        new_size = tf.cond(tf.cast(tf.reduce_max(large_size), tf.float32) > max_size,
                           lambda: small_size, lambda: large_size)
    if factor is not None:
        new_size += (factor - (new_size - 1) % factor) % factor
    if not keep_aspect_ratio:
        new_size = tf.stack([tf.reduce_max(new_size), tf.reduce_max(new_size)])
    resized_image = _resize(image, new_size, "bilinear")
    resized_label = None
    if label is not None:
        method = get_label_resize_method(label)
        if label_layout_is_chw:
            resized_label = tf.squeeze(_resize(tf.expand_dims(label, 3), new_size, method), 3)
        else:
            resized_label = _resize(label, new_size, method)
    return [resized_image, resized_label]


def preprocess_image_and_label(
    image: tf.Tensor,
    label: tf.Tensor | None,
    crop_height: int | None,
    crop_width: int | None,
    min_resize_value: int | None = None,
    max_resize_value: int | None = None,
    resize_factor: int | None = None,
    min_scale_factor: float = 1.0,
    max_scale_factor: float = 1.0,
    scale_factor_step_size: float = 0.0,
    ignore_label: int = 255,
    is_training: bool = True,
    mean_pixel=127.5,
    flip_probability: float = _PROB_OF_FLIP,
    seed: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
    """The original's `preprocess_image_and_label`.

    Args:
      image: [H,W,3] image (any numeric dtype, 0..255).
      label: [H,W,1] integer label, or None (eval/vis on unlabeled data).
      crop_height, crop_width: training crop; at eval, the minimum padded size (None: no pad).
      min_resize_value, max_resize_value, resize_factor: resize-to-range before anything else.
      min_scale_factor, max_scale_factor, scale_factor_step_size: random scale (training).
      ignore_label: label pad value.
      is_training: scale, crop and flip only when True.
      mean_pixel: image pad value, the backbone's mean pixel (127.5 for [-1, 1] backbones).
      flip_probability: probability of the left-right flip (training).
      seed: optional stateless seed, shape [2], for deterministic augmentation.

    Returns:
      (original_image, processed float32 image, int32 label or None). `original_image` is the
      input, or the resized image when resize-to-range is on.
    """
    if is_training and label is None:
        raise ValueError("During training, label must be provided.")
    if is_training and (crop_height is None or crop_width is None):
        raise ValueError("Training needs a crop size.")
    seeds = [None, None, None]
    if seed is not None:
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    original_image = image
    processed_image = tf.cast(image, tf.float32)
    if label is not None:
        label = tf.cast(label, tf.int32)
    if min_resize_value or max_resize_value:
        processed_image, label = resize_to_range(
            processed_image, label, min_size=min_resize_value, max_size=max_resize_value,
            factor=resize_factor)
        original_image = tf.identity(processed_image)
    if is_training:
        scale = get_random_scale(min_scale_factor, max_scale_factor, scale_factor_step_size,
                                 seed=seeds[0])
        processed_image, label = randomly_scale_image_and_label(processed_image, label, scale)
        processed_image.set_shape([None, None, 3])
    if crop_height is not None and crop_width is not None:
        shape = tf.shape(processed_image)
        target_height = tf.maximum(shape[0], crop_height)
        target_width = tf.maximum(shape[1], crop_width)
        mean = tf.convert_to_tensor(mean_pixel, tf.float32)
        if mean.shape.rank == 1:
            mean = tf.reshape(mean, [1, 1, -1])
        processed_image = pad_to_bounding_box(processed_image, 0, 0, target_height,
                                              target_width, mean)
        if label is not None:
            label = pad_to_bounding_box(label, 0, 0, target_height, target_width, ignore_label)
    if is_training:
        processed_image, label = random_crop([processed_image, label], crop_height, crop_width,
                                             seed=seeds[1])
        processed_image.set_shape([crop_height, crop_width, 3])
        label.set_shape([crop_height, crop_width, 1])
        processed_image, label, _ = flip_dim([processed_image, label], flip_probability, dim=1,
                                             seed=seeds[2])
    return original_image, processed_image, label


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """The original's preprocessing flags (defaults are its training defaults).

    Attributes:
      crop_size: (height, width) of training crops; at eval the minimum padded size, or None
        for no padding (whole images of any size, batched with padding).
      min_resize_value, max_resize_value, resize_factor: optional resize-to-range.
      min_scale_factor, max_scale_factor, scale_factor_step_size: random scale grid (training).
      mean_pixel: image pad value; the backbone's mean pixel (127.5 for [-1, 1] models).
      flip_probability: left-right flip probability (training).
    """

    crop_size: tuple[int, int] | None = (513, 513)
    min_resize_value: int | None = None
    max_resize_value: int | None = None
    resize_factor: int | None = None
    min_scale_factor: float = 0.5
    max_scale_factor: float = 2.0
    scale_factor_step_size: float = 0.25
    mean_pixel: float | tuple[float, float, float] = 127.5
    flip_probability: float = 0.5


def preprocess_with_config(image: tf.Tensor, label: tf.Tensor | None, config: PreprocessConfig,
                           ignore_label: int = 255, is_training: bool = True,
                           seed: tf.Tensor | None = None):
    """:func:`preprocess_image_and_label` with its settings taken from ``config`` (whole)."""
    crop = config.crop_size
    return preprocess_image_and_label(
        image, label, crop_height=crop[0] if crop else None,
        crop_width=crop[1] if crop else None, min_resize_value=config.min_resize_value,
        max_resize_value=config.max_resize_value, resize_factor=config.resize_factor,
        min_scale_factor=config.min_scale_factor, max_scale_factor=config.max_scale_factor,
        scale_factor_step_size=config.scale_factor_step_size, ignore_label=ignore_label,
        is_training=is_training, mean_pixel=config.mean_pixel,
        flip_probability=config.flip_probability, seed=seed)
