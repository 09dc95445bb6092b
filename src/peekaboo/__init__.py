"""Peekaboo: zero-shot, open-vocabulary segmentation with text-to-image diffusion models, without training.

Importing it changes no process-wide setting: ``run.py`` and the bench opt in to the CPU allocator tuning
(``peekaboo.cpu_memory.keep_freed_memory``), and so may a notebook."""

__version__ = "0.1.0"
