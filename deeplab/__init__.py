"""deeplab-keras: DeepLabv3 / DeepLabv3+ on TensorFlow 2 and Keras 3."""

__version__ = "0.1.0"
