"""Peekaboo: zero-shot, open-vocabulary segmentation with text-to-image diffusion models, without training."""

from peekaboo.cpu_memory import keep_freed_memory

keep_freed_memory()  # large CPU tensors reuse freed memory instead of page-faulting anew (see cpu_memory)

__version__ = "0.1.0"
