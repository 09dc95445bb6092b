"""A small Stable Diffusion trained on the toy world: the real SD code path (VAE, CLIP text encoder, UNet with
cross-attention, SD's schedule) with learned weights whose answers the toy world knows.

``weights/`` holds the shipped pipeline in SD's folder layout; ``model=toy_sd`` loads it with the unchanged
``StableDiffusionPrior``. ``python -m peekaboo.toy.train_prior`` retrains it, ``python -m peekaboo.toy.check_prior``
checks its samples.
"""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"


def weights_path() -> str:
    """The shipped pipeline's directory (package data, so it works from any directory and when installed)."""
    return str(WEIGHTS_DIR)
