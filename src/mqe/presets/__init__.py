"""Hyperparameter presets, as data (presets.json)."""
