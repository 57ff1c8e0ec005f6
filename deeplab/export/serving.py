"""The SavedModel serving module: uint8 images (or encoded bytes) → class predictions."""

from __future__ import annotations

import tensorflow as tf

from deeplab.data.exif import decode_oriented
from deeplab.inference.probabilities import predict_probabilities
from deeplab.ops import resize_bilinear
from deeplab.runs.store import checkpoint_weights

PREDICTIONS = "semantic_predictions"
PROBABILITIES = "semantic_probabilities"
_EXPECTED = "a uint8 image tensor of shape [1, height, width, 3]"


def check_serving_image(image):
    """Fails with a message saying what is expected before any op sees a bad image."""
    shape = tf.shape(image)
    prefix = f"serving_default expects {_EXPECTED}; "
    checks = [tf.debugging.assert_equal(tf.rank(image), 4, message=prefix + "got another rank "
                                        "(add the batch dimension).")]
    with tf.control_dependencies(checks):
        shape = tf.pad(tf.shape(image), [[0, 4]], constant_values=1)[:4]
        checks += [
            tf.debugging.assert_equal(shape[0], 1, message=prefix + "batch size must be 1 "
                                      "(use serving_batch for batches)."),
            tf.debugging.assert_equal(shape[3], 3, message=prefix + "the last dimension must "
                                      "be 3 (RGB)."),
            tf.debugging.assert_positive(shape[1:3], message=prefix + "got an empty image."),
        ]
    with tf.control_dependencies(checks):
        return tf.ensure_shape(tf.identity(image), [1, None, None, 3])


class SegmentationServer(tf.Module):
    """What ``serving_default`` runs, with the original's in-graph pre/post-processing.

    The image is optionally resized to range (``min_resize_value``, ``max_resize_value``,
    ``resize_factor`` as the original's flags), padded internally to an aligned size,
    segmented (multi-scale + flip when configured) and the probabilities are brought back
    to the input size, so ``semantic_predictions`` is int32 [1, H, W] for any H, W.
    """

    def __init__(self, model, inference_scales=(1.0,), add_flipped_images=False,
                 min_resize_value=None, max_resize_value=None, resize_factor=None,
                 with_probabilities=True):
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

    @tf.function(input_signature=[tf.TensorSpec(None, tf.uint8, name="image")])
    def serve(self, image):
        return self.segment(check_serving_image(image))

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image_bytes")])
    def serve_encoded(self, image_bytes):
        # As viewers show it: a phone photo's EXIF orientation is applied.
        return self.segment(tf.expand_dims(decode_oriented(image_bytes), 0))

    def batch_function(self, crop_size):
        """A fixed-size batched signature: uint8 [N, crop_h, crop_w, 3]."""

        @tf.function(input_signature=[tf.TensorSpec([None, *crop_size, 3], tf.uint8,
                                                    name="images")])
        def serve_batch(images):
            return self.segment(images)

        return serve_batch
