"""``instantiate`` for our config groups, minus the bookkeeping keys that are not constructor arguments."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from peekaboo.errors import PeekabooError

# Every group records its preset name (summaries, run names); model.working_resolution is read by the data presets.
BOOKKEEPING = ("name", "working_resolution")


def build(cfg: DictConfig, *drop: str, **kwargs: Any) -> Any:
    """Instantiate ``cfg`` (resolved in its parent's context) without ``name`` and the ``drop`` keys.

    ``kwargs`` are runtime arguments (devices, priors, tensors) passed straight to the target.
    """
    node = OmegaConf.to_container(cfg, resolve=True)
    node = {k: v for k, v in node.items() if k not in BOOKKEEPING + drop}
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, PeekabooError):  # our errors already say what to do: drop Hydra's wrapper
            raise cause.with_traceback(None) from None
        raise
