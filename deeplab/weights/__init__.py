"""Weights from the original release: TFLite files, TF1 checkpoints, Keras applications."""
