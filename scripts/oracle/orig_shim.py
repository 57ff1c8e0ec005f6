"""Run-time shim that lets the ORIGINAL DeepLab (TF1 + tf.contrib) import under TF 2.20.

Registers `tensorflow.contrib.*` modules in sys.modules, backed by tf_slim 1.1.0 (the
standalone copy of tf.contrib.slim / contrib.layers / contrib.framework) and tf.compat.v1.
Only the names the original's files use are provided. Nothing of the original is copied here.
"""
import os
import sys
import types

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow.compat.v1 as tf  # noqa: E402

tf.disable_v2_behavior()
import importlib  # noqa: E402

import tf_slim  # noqa: E402

_slim_layers_layers = importlib.import_module("tf_slim.layers.layers")
_slim_layers_utils = importlib.import_module("tf_slim.layers.utils")
from tf_slim.nets import resnet_utils as _resnet_utils  # noqa: E402


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


class _HParams:
    """Stand-in for contrib.training.HParams (the NAS backbones' hyper-parameters)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def set_hparam(self, k, v):
        setattr(self, k, v)

    def values(self):
        return dict(self.__dict__)


def _unsupported(name):
    def f(*a, **k):
        raise NotImplementedError(f"oracle shim: tensorflow.contrib.{name} is not provided")
    return f


@tf_slim.add_arg_scope
def _conv2d_ws(inputs, num_outputs, kernel_size, *args, use_weight_standardization=False,
               **kwargs):
    """conv2d_ws.conv2d without weight standardization: slim's conv2d (scope 'Conv',
    variables 'weights' / 'biases'), arg scopes keyed on this function."""
    if use_weight_standardization:
        raise NotImplementedError("oracle shim: weight standardization is not provided")
    return tf_slim.conv2d(inputs, num_outputs, kernel_size, *args, **kwargs)


def _conv2d_same_ws(inputs, num_outputs, kernel_size, stride, rate=1, scope=None):
    """conv2d_ws.conv2d_same: SAME padding at stride 1, else explicit symmetric padding of
    the dilated kernel's extent and a VALID conv."""
    if stride == 1:
        return _conv2d_ws(inputs, num_outputs, kernel_size, stride=1, rate=rate,
                          padding="SAME", scope=scope)
    extent = kernel_size + (kernel_size - 1) * (rate - 1)
    begin = (extent - 1) // 2
    end = extent - 1 - begin
    inputs = tf.pad(inputs, [[0, 0], [begin, end], [begin, end], [0, 0]])
    return _conv2d_ws(inputs, num_outputs, kernel_size, stride=stride, rate=rate,
                      padding="VALID", scope=scope)


def install():
    if "tensorflow.contrib" in sys.modules:
        return
    import numpy as np
    if "int" not in np.__dict__:
        np.int = int  # removed in numpy 1.24; slim's mobilenet_v3.py uses it at import time
    slim_nets = _module("tensorflow.contrib.slim.nets", resnet_utils=_resnet_utils)
    sys.modules["tensorflow.contrib.slim"] = tf_slim  # `from tensorflow.contrib import slim`
    tf_slim.nets = slim_nets if not hasattr(tf_slim, "nets") else tf_slim.nets
    sys.modules["tensorflow.contrib.slim.nets"] = slim_nets
    layers_pl = _module("tensorflow.contrib.layers.python.layers",
                        layers=_slim_layers_layers, utils=_slim_layers_utils)
    _module("tensorflow.contrib.layers.python", layers=layers_pl)
    layers = _module("tensorflow.contrib.layers",
                     **{k: getattr(tf_slim, k) for k in dir(tf_slim) if not k.startswith("_")})
    layers.python = sys.modules["tensorflow.contrib.layers.python"]
    framework = _module(
        "tensorflow.contrib.framework", arg_scope=tf_slim.arg_scope,
        add_arg_scope=tf_slim.add_arg_scope,
        get_variables_to_restore=tf_slim.get_variables_to_restore,
        assign_from_checkpoint=tf_slim.assign_from_checkpoint)
    training = _module("tensorflow.contrib.training", HParams=_HParams,
                       multiply_gradients=tf_slim.learning.multiply_gradients)
    quantize = _module("tensorflow.contrib.quantize",
                       create_training_graph=_unsupported("quantize.create_training_graph"),
                       create_eval_graph=_unsupported("quantize.create_eval_graph"))
    tfprof = _module("tensorflow.contrib.tfprof", ProfileContext=_unsupported("tfprof"))
    _module("tensorflow.contrib", slim=tf_slim, layers=layers, framework=framework,
            training=training, quantize=quantize, tfprof=tfprof)
    # tf_slim.batch_norm builds tf.compat.v1.layers.BatchNormalization, which TF 2.20 loads
    # lazily from `tf_keras.legacy_tf_layers`; tf-keras 2.20 ships it as tf_keras.src.*.
    sys.modules["tf_keras.legacy_tf_layers"] = importlib.import_module(
        "tf_keras.src.legacy_tf_layers")
    sys.modules["tf_keras.legacy_tf_layers.normalization"] = importlib.import_module(
        "tf_keras.src.legacy_tf_layers.normalization")
    # tf_slim 1.1.0's learning.multiply_gradients tests isinstance(x, ops.Tensor / ops.
    # IndexedSlices); TF 2.20 moved those classes out of framework.ops.
    from tensorflow.python.framework import ops as _ops
    if not hasattr(_ops, "Tensor"):
        _ops.Tensor = tf.Tensor
    if not hasattr(_ops, "IndexedSlices"):
        _ops.IndexedSlices = tf.IndexedSlices
    tf.contrib = sys.modules["tensorflow.contrib"]  # train.py reads `tf.contrib.slim`
    # deeplab/core/conv2d_ws.py subclasses tf.layers.Layer, which TF 2.20 (Keras 3) lacks.
    # Its conv without weight standardization (what every DeepLab model variant uses) is
    # slim's conv2d with the same scope and variable names, so a stand-in provides that
    # and refuses weight standardization.
    _module("deeplab.core.conv2d_ws", conv2d=_conv2d_ws, conv2d_same=_conv2d_same_ws)
    here = os.environ.get("ORIG_DIR", "/tmp/orig")
    for p in (os.path.join(here, "research"), os.path.join(here, "research", "slim")):
        if p not in sys.path:
            sys.path.insert(0, p)


class _NoDropoutSlim(types.ModuleType):
    """tf_slim with `dropout` replaced by the identity (used only for model.py's
    concat_projection_dropout, keep_prob 0.9): makes a training step deterministic."""

    def __init__(self):
        super().__init__("tf_slim_no_dropout")

    def __getattr__(self, k):
        return getattr(tf_slim, k)

    @staticmethod
    def dropout(inputs, *args, **kwargs):
        return tf.identity(inputs, name=kwargs.get("scope") or "no_dropout")


def disable_model_dropout(model_module):
    model_module.slim = _NoDropoutSlim()


install()
