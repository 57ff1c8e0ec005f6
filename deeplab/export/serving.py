"""The SavedModel serving module: uint8 images (or encoded bytes) → class predictions."""

from __future__ import annotations

import tensorflow as tf

from deeplab.data.exif import decode_oriented, encoded_image_size
from deeplab.inference.probabilities import predict_probabilities
from deeplab.ops import resize_bilinear
from deeplab.runs.store import checkpoint_weights

# The most pixels a request may carry: ~1 GB of peak memory for MobileNetV2 at full size
# (measured: 2.3 GB at 3000x3000); the probabilities alone are H x W x classes floats.
DEFAULT_MAX_PIXELS = 4096 * 4096
PREDICTIONS = "semantic_predictions"
PROBABILITIES = "semantic_probabilities"
_EXPECTED = "a uint8 image tensor of shape [1, height, width, 3]"


def check_serving_image(image):
    """Fails with a message saying what is expected before any op sees a bad image: one
    message, the first check that fails (each later condition holds when an earlier one
    failed, as the assertions run in no fixed order), with the shape that was sent."""
    prefix = f"serving_default expects {_EXPECTED}; "
    shape = tf.shape(image)  # int32: an Assert of int32 and strings needs no cond (NoOp)
    rank_ok = tf.equal(tf.rank(image), 4)
    padded = tf.pad(shape, [[0, tf.maximum(4 - tf.size(shape), 0)]], constant_values=1)[:4]
    batch_ok = tf.logical_or(tf.logical_not(rank_ok), tf.equal(padded[0], 1))
    ready = tf.logical_and(rank_ok, batch_ok)
    rgb_ok = tf.logical_or(tf.logical_not(ready), tf.equal(padded[3], 3))
    ready = tf.logical_and(ready, rgb_ok)
    size_ok = tf.logical_or(tf.logical_not(ready), tf.reduce_all(padded[1:3] > 0))
    checks = [
        tf.debugging.Assert(rank_ok, [prefix + "got a tensor of another rank (an [height, "
                                      "width, 3] image needs the batch dimension, a grey "
                                      "[height, width] one the 3 channels too). Its shape:",
                                      shape], summarize=8),
        tf.debugging.Assert(batch_ok, [prefix + "batch size must be 1 (use serving_batch for "
                                       "batches). Its shape:", shape], summarize=8),
        tf.debugging.Assert(rgb_ok, [prefix + "the last dimension must be 3 (RGB). Its shape:",
                                     shape], summarize=8),
        tf.debugging.Assert(size_ok, [prefix + "got an empty image. Its shape:", shape],
                            summarize=8),
    ]
    with tf.control_dependencies(checks):
        # A reshape, not tf.ensure_shape: Grappler takes an EnsureShape's shape as a fact
        # about its input and folds the rank check above to "4" before it runs.
        return tf.reshape(image, tf.stack([1, padded[1], padded[2], 3]))


def check_encoded_image(image_bytes):
    """One encoded image (a scalar string), in a format whose size its header states:
    anything else is refused in one message before it is decoded (a vector of images
    would otherwise fail inside an internal op)."""
    single = tf.equal(tf.rank(image_bytes), 0)
    checks = [tf.debugging.Assert(single, [
        "serving_encoded expects one encoded image (a scalar string); send one request per "
        "image, or decoded images of one size to serving_batch. The shape sent:",
        tf.shape(image_bytes)], summarize=8)]
    with tf.control_dependencies(checks):
        image_bytes = tf.reshape(image_bytes, [])
    size = encoded_image_size(image_bytes)
    known = tf.debugging.Assert(tf.reduce_all(size >= 0), [
        "serving_encoded: not a JPEG, PNG, GIF, BMP or WebP image (its first bytes say "
        "neither); send one of those"])
    with tf.control_dependencies([known]):
        return tf.identity(image_bytes), size


class SegmentationServer(tf.Module):
    """What ``serving_default`` runs, with the original's in-graph pre/post-processing.

    The image is optionally resized to range (``min_resize_value``, ``max_resize_value``,
    ``resize_factor`` as the original's flags), padded internally to an aligned size,
    segmented (multi-scale + flip when configured) and the probabilities are brought back
    to the input size, so ``semantic_predictions`` is int32 [1, H, W] for any H, W.

    An image of more than ``max_pixels`` pixels is refused (InvalidArgument, saying the
    limit and what to do), encoded bytes from their header before anything is decoded: a
    request's memory is bounded by the limit, not by what a client sends.
    """

    def __init__(self, model, inference_scales=(1.0,), add_flipped_images=False,
                 min_resize_value=None, max_resize_value=None, resize_factor=None,
                 with_probabilities=True, max_pixels: int | None = None):
        super().__init__(name="deeplab_server")
        self.model = model
        # Keras 3 layers do not expose their trainable variables as trackable children; a
        # SavedModel then keeps them only as function captures, which TF2's loader restores
        # but TF1-style loaders (TF Serving, saved_model_cli run) leave uninitialised.
        self.model_weights = checkpoint_weights(model)
        self.inference_scales = tuple(float(s) for s in inference_scales)
        self.add_flipped_images = add_flipped_images
        self.resize = (min_resize_value, max_resize_value, resize_factor)
        self.with_probabilities = with_probabilities
        self.max_pixels = max_pixels

    def segment(self, images):
        """images: uint8 [N, H, W, 3] → outputs at the input size (what every signature
        runs; the frozen graph of :mod:`deeplab.export.frozen_graph` too)."""
        x = tf.cast(images, tf.float32)
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        min_size, max_size, factor = self.resize
        if min_size or max_size:
            from deeplab.data.input_preprocess import resize_to_range

            x = tf.expand_dims(resize_to_range(x[0], None, min_size or max_size, max_size,
                                               factor)[0], 0)
        probabilities = predict_probabilities(self.model, x, self.inference_scales,
                                              self.add_flipped_images)
        if min_size or max_size:
            probabilities = resize_bilinear(probabilities, tf.stack([height, width]))
        outputs = {PREDICTIONS: tf.argmax(probabilities, -1, output_type=tf.int32)}
        if self.with_probabilities:
            outputs[PROBABILITIES] = probabilities
        return outputs

    def _within_limit(self, size, signature: str):
        """An assertion that [height, width] ``size`` has at most ``max_pixels`` pixels."""
        if not self.max_pixels:
            return []
        # No quotes: the Assert op would print them escaped.
        message = (f"{signature}: the image has more than {self.max_pixels} pixels, the "
                   "limit of this export (export_model --max_image_pixels); send it resized, "
                   "or export with a higher limit. Its height and width:")
        size = tf.cast(size, tf.int64)
        return [tf.debugging.Assert(size[0] * size[1] <= self.max_pixels, [message, size],
                                    summarize=2)]

    @tf.function(input_signature=[tf.TensorSpec(None, tf.uint8, name="image")])
    def serve(self, image):
        image = check_serving_image(image)
        with tf.control_dependencies(self._within_limit(tf.shape(image)[1:3],
                                                        "serving_default")):
            return self.segment(tf.identity(image))

    # Any shape: a scalar is asked for, and anything else refused in words (a [] spec is
    # not enforced on a loaded signature, and a vector then failed in an internal op).
    @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name="image_bytes")])
    def serve_encoded(self, image_bytes):
        # Checked on the header first: decoding is where a small file becomes huge.
        image_bytes, size = check_encoded_image(image_bytes)
        with tf.control_dependencies(self._within_limit(size, "serving_encoded")):
            # As viewers show it: a phone photo's EXIF orientation is applied.
            image = decode_oriented(tf.identity(image_bytes))
        with tf.control_dependencies(self._within_limit(tf.shape(image)[:2],
                                                        "serving_encoded")):
            return self.segment(tf.expand_dims(image, 0))

    def batch_function(self, crop_size):
        """A fixed-size batched signature: uint8 [N, crop_h, crop_w, 3]."""

        @tf.function(input_signature=[tf.TensorSpec([None, *crop_size, 3], tf.uint8,
                                                    name="images")])
        def serve_batch(images):
            return self.segment(images)

        return serve_batch
