"""Exports: SavedModel for TF Serving and TFLite for phones."""
