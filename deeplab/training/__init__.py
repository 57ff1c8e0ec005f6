"""Training: losses, learning-rate policies, gradient multipliers, the distributed trainer."""
