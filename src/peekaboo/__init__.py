"""Peekaboo: zero-shot, open-vocabulary segmentation with text-to-image diffusion models, without training.

``from peekaboo import Peekaboo, segment`` is the Python API (``peekaboo.api``); it is imported on first use,
so ``import peekaboo.<module>`` stays light. Importing it changes no process-wide setting: ``run.py`` and the
bench opt in to the CPU allocator tuning (``peekaboo.cpu_memory.keep_freed_memory``), and so may a notebook."""

__version__ = "0.1.0"
__all__ = ["Peekaboo", "RGBAResult", "SegmentationResult", "segment"]


def __getattr__(name: str):
    if name in __all__:
        from peekaboo import api

        return getattr(api, name)
    raise AttributeError(f"module 'peekaboo' has no attribute {name!r}")
