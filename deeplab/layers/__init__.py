"""Keras layers of the DeepLab family (channels-last)."""

from deeplab.layers.aspp import ASPP
from deeplab.layers.atrous_conv2d import AtrousConv2D
from deeplab.layers.atrous_depthwise_conv2d import AtrousDepthwiseConv2D
from deeplab.layers.atrous_separable_conv import AtrousSeparableConv
from deeplab.layers.batch_norm import BatchNorm
from deeplab.layers.conv_bn_act import ConvBNAct
from deeplab.layers.decoder import Decoder
from deeplab.layers.dense_prediction_cell import DensePredictionCell
from deeplab.layers.drop_path import DropPath
from deeplab.layers.duc import DUC
from deeplab.layers.ksac import KSAC
from deeplab.layers.multi_rate_logits import MultiRateLogits
from deeplab.layers.norm_options import NormOptions
from deeplab.layers.preprocess import Preprocess
from deeplab.layers.pyramid_merge import PyramidMerge
from deeplab.layers.resize_like import ResizeLike
from deeplab.layers.squeeze_excite import SqueezeExcite

__all__ = [
    "ASPP",
    "AtrousConv2D",
    "AtrousDepthwiseConv2D",
    "AtrousSeparableConv",
    "BatchNorm",
    "ConvBNAct",
    "Decoder",
    "DensePredictionCell",
    "DropPath",
    "DUC",
    "KSAC",
    "MultiRateLogits",
    "NormOptions",
    "Preprocess",
    "PyramidMerge",
    "ResizeLike",
    "SqueezeExcite",
]
