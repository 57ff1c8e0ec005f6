"""Evaluation: the confusion-matrix metrics and the split evaluator."""
