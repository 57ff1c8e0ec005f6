"""Converters from data sets' own layouts to records + dataset.json (TF-free task builders)."""
