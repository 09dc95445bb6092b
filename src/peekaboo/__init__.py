"""Peekaboo: zero-shot, open-vocabulary segmentation with text-to-image diffusion models, without training.

``from peekaboo import Peekaboo, segment`` is the Python API (``peekaboo.api``); it is imported on first use,
so ``import peekaboo.<module>`` stays light."""

from peekaboo.cpu_memory import keep_freed_memory

keep_freed_memory()  # large CPU tensors reuse freed memory instead of page-faulting anew (see cpu_memory)

__version__ = "0.1.0"
__all__ = ["Peekaboo", "RGBAResult", "SegmentationResult", "segment"]


def __getattr__(name: str):
    if name in __all__:
        from peekaboo import api

        return getattr(api, name)
    raise AttributeError(f"module 'peekaboo' has no attribute {name!r}")
