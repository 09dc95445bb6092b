"""Registers every schema in Hydra's ConfigStore.

The primary config (``conf/config.yaml``) starts from ``config_schema``; each YAML preset of a polymorphic
group names its schema in its own defaults list (e.g. ``conf/model/sd15.yaml`` -> ``schema_stable_diffusion``),
so an unknown key or a wrongly typed value fails at start-up with the offending key.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from peekaboo.baselines.configs import AttentionGMMConfig, DAAMConfig, DiffSegConfig
from peekaboo.config.resolvers import register_resolvers
from peekaboo.config.schema import Config, MethodConfig, NoLoggerConfig, WandbLoggerConfig
from peekaboo.data.configs import (
    CocoStuff27Config,
    FgBgGridDataConfig,
    FolderDataConfig,
    ImageDataConfig,
    PromptsDataConfig,
    RefCOCODataConfig,
    ToyDataConfig,
    VOCCDataConfig,
)
from peekaboo.guides.configs import DepthGuideConfig, RGBGuideConfig
from peekaboo.optim import AdamConfig, SGDConfig
from peekaboo.params.configs import FourierFieldConfig, RasterFieldConfig
from peekaboo.priors.configs import StableDiffusionConfig, TinySDConfig, ToyPriorConfig
from peekaboo.tasks.configs import FgBgGridTaskConfig, RGBATaskConfig, SegmentTaskConfig
from peekaboo.toy.learned.configs import TrainPriorConfig

SCHEMAS = {
    "method": {"method": MethodConfig, "diffseg": DiffSegConfig, "attn_gmm": AttentionGMMConfig, "daam": DAAMConfig},
    "model": {"stable_diffusion": StableDiffusionConfig, "tiny_sd": TinySDConfig, "toy": ToyPriorConfig},
    "data": {
        "image": ImageDataConfig,
        "folder": FolderDataConfig,
        "toy": ToyDataConfig,
        "voc_c": VOCCDataConfig,
        "refcoco": RefCOCODataConfig,
        "prompts": PromptsDataConfig,
        "cocostuff27": CocoStuff27Config,
        "fg_bg_grid": FgBgGridDataConfig,
    },
    "param/field": {"raster": RasterFieldConfig, "fourier": FourierFieldConfig},
    "optimizer": {"sgd": SGDConfig, "adam": AdamConfig},
    "guidance_map": {"rgb": RGBGuideConfig, "depth": DepthGuideConfig},
    "task": {"segment": SegmentTaskConfig, "rgba": RGBATaskConfig, "fg_bg_grid": FgBgGridTaskConfig},
    "logger": {"none": NoLoggerConfig, "wandb": WandbLoggerConfig},
}


def register_configs() -> None:
    """Idempotent; called before Hydra composes (CLI and tests)."""
    register_resolvers()
    store = ConfigStore.instance()
    store.store(name="config_schema", node=Config)
    store.store(name="train_prior_schema", node=TrainPriorConfig)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            store.store(group=group, name=f"schema_{name}", node=node)
