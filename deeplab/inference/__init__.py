"""Inference: probabilities of whole images, segmenters for every model format, colormaps,
pictures."""
