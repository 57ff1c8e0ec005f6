"""Writing BN-folded (weights, bias) pairs into layers that carry a BatchNorm."""

from __future__ import annotations

import numpy as np

from deeplab.weights.scopes import ScopeTarget


def keras_kernel(weights: np.ndarray) -> np.ndarray:
    """TFLite layout → Keras layout.

    TFLite stores conv weights as [out, kh, kw, in] and depthwise weights as
    [1, kh, kw, channels]; Keras wants [kh, kw, in, out] and [kh, kw, channels, 1]: the
    same axis move for both.
    """
    return np.transpose(weights, (1, 2, 3, 0))


def assign_folded(target: ScopeTarget, kernel: np.ndarray, bias: np.ndarray) -> None:
    """Sets a conv from BN-folded weights; its BatchNorm becomes an exact identity + bias.

    With gamma 1, moving mean 0 and moving variance ``1 - epsilon`` the BN computes
    ``x / sqrt(1 - eps + eps) + beta`` = ``x + bias`` exactly in float32, so the model keeps
    its architecture (and can be fine-tuned) while reproducing the folded graph. Training
    with batch statistics would change it: fine-tune imported models with
    ``fine_tune_batch_norm=False``.
    """
    expected = tuple(target.conv.kernel.shape)
    if kernel.shape != expected:
        raise ValueError(
            f"{target.scope}: weights of shape {kernel.shape} do not fit the model's "
            f"{expected}; the model config does not match the file (depth_multiplier, "
            "num_classes or atrous rates?)."
        )
    target.conv.kernel.assign(kernel.astype("float32"))
    if target.bn is None:
        target.conv.bias.assign(bias.astype("float32"))
        return
    bn = target.bn
    channels = bias.shape[0]
    bn.gamma.assign(np.ones(channels, "float32"))
    bn.beta.assign(bias.astype("float32"))
    bn.moving_mean.assign(np.zeros(channels, "float32"))
    bn.moving_variance.assign(np.full(channels, 1.0 - bn.epsilon, "float32"))
