"""Peekaboo: zero-shot, open-vocabulary segmentation with text-to-image diffusion models, without training."""

__version__ = "0.1.0"
