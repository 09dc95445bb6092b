"""Registers every schema in Hydra's ConfigStore.

The primary config (``conf/config.yaml``) starts from ``config_schema``; each YAML preset of a polymorphic
group names its schema in its own defaults list (e.g. ``conf/model/sd15.yaml`` -> ``schema_stable_diffusion``),
so an unknown key or a wrongly typed value fails at start-up with the offending key.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from peekaboo.baselines.attn_gmm import AttentionGMMConfig
from peekaboo.baselines.daam import DAAMConfig
from peekaboo.baselines.diffseg import DiffSegConfig
from peekaboo.config.resolvers import register_resolvers
from peekaboo.config.schema import Config, MethodConfig
from peekaboo.data.cocostuff import CocoStuff27Config
from peekaboo.data.fg_bg_grid import FgBgGridDataConfig
from peekaboo.data.folder import FolderDataConfig
from peekaboo.data.image import ImageDataConfig
from peekaboo.data.prompts import PromptsDataConfig
from peekaboo.data.refcoco import RefCOCODataConfig
from peekaboo.data.toy import ToyDataConfig
from peekaboo.data.voc_c import VOCCDataConfig
from peekaboo.depth import DepthGuideConfig
from peekaboo.guides import RGBGuideConfig
from peekaboo.loggers import NoLoggerConfig, WandbLoggerConfig
from peekaboo.optim import AdamConfig, SGDConfig
from peekaboo.priors.stable_diffusion import StableDiffusionConfig
from peekaboo.priors.tiny_sd import TinySDConfig
from peekaboo.priors.toy import ToyPriorConfig
from peekaboo.tasks.fg_bg_grid import FgBgGridTaskConfig
from peekaboo.tasks.rgba import RGBATaskConfig
from peekaboo.tasks.segment import SegmentTaskConfig
from peekaboo.toy.learned.config import TrainPriorConfig

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
