"""The top-level config schema and the schemas of the small groups (method, schedule, trainer, logger).

Torch-free, like every schema the config store imports (``run.py --help`` starts without torch)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from peekaboo.engine.configs import ConvergedConfig, StopRule
from peekaboo.guidance.configs import LossConfig
from peekaboo.params.configs import ParamConfig


@dataclass
class ScheduleConfig:
    """Schema of ``schedule``: how long each optimisation runs and how often the timelapse samples it.

    ``stop=converged`` stops each unit once its mask has settled (``converged``, see peekaboo.engine.stopping;
    ``iterations`` is then the maximum) and runs the units in ``trainer.batch_size`` slots refilled as they stop
    (peekaboo.engine.continuous)."""

    name: str = "paper"
    iterations: int = 300
    timelapse_every: int = 10  # 0 disables the timelapse
    stop: StopRule = StopRule.fixed  # fixed: every unit runs ``iterations`` (the paper); converged: see above
    converged: ConvergedConfig = field(default_factory=ConvergedConfig)


@dataclass
class TrainerConfig:
    """Schema of ``trainer``: the ``lightning.Trainer`` made from it (any of its flags can be added on the command
    line, e.g. ``+trainer.precision=bf16-mixed``), plus how items are batched and loaded (ours, not Lightning's)."""

    _target_: str = "lightning.Trainer"
    name: str = "cpu"
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    enable_progress_bar: bool = True
    enable_checkpointing: bool = False  # nothing to checkpoint: every item's parameters live for one predict step
    enable_model_summary: bool = False
    batch_size: int = 1  # items optimised together (their prompts and backgrounds share each UNet call)
    num_workers: int = 0  # data loader workers


class WandbMode(enum.Enum):
    online = "online"
    offline = "offline"
    disabled = "disabled"


@dataclass
class NoLoggerConfig:
    """Schema of ``logger=none``: plain files only."""

    _target_: str | None = None
    name: str = "none"


@dataclass
class WandbLoggerConfig:
    """Schema of ``logger=wandb``. Runs are grouped by sweep and named by the job's overrides by default."""

    _target_: str = "peekaboo.loggers.wandb_logger"
    name: str = "wandb"
    project: str = "peekaboo"
    entity: str | None = None
    mode: WandbMode = WandbMode.offline
    group: str | None = None  # None: the sweep directory's name in a multirun
    run_name: str | None = None  # None: the job's overrides (or the run directory's name)
    tags: list[str] = field(default_factory=list)
    table_rows: int = 100  # rows of the run's results table (item, prompt, overlay with mask layers, IoU, ...); 0: none
    live_curves: bool = False  # log the batch's mean loss terms as live/* while it optimises (reads them to the host)
    live_every: int = 10  # iterations between two live points


@dataclass
class MethodConfig:
    """Schema of ``method``: the LightningModule class whose ``predict_step`` turns a batch into item artifacts.

    It is constructed as ``cls(cfg, record)`` with the whole job config (methods read the groups they use)."""

    _target_: str = "peekaboo.lightning.module.PeekabooModule"
    name: str = "peekaboo"


@dataclass
class Config:
    method: Any = MISSING
    model: Any = MISSING
    param: ParamConfig = MISSING
    optimizer: Any = MISSING
    loss: LossConfig = MISSING
    guidance_map: Any = MISSING
    schedule: ScheduleConfig = MISSING
    data: Any = MISSING
    task: Any = MISSING
    trainer: TrainerConfig = MISSING
    logger: Any = MISSING
    seed: int = 0  # item i uses seed + i
    run_name: str = "peekaboo"  # names the output directory
    resume: bool = True  # skip items already complete in the output directory
    print_items: int = 50  # print the per-item table when the run has at most this many items
    contact_sheet: int = 32  # rows (items) of contact_sheet.png when ground truth exists; 0 disables
    subset: Any = None  # None: every item; N: the first N items; [id, ...]: these items (indices and seeds kept)
    render: Any = None  # {name: {_target_: fn, ...}}: fn(run or sweep dir, ...) after the run / sweep (figures, tables)
    figure: Any = None  # free-form per-job values of figure experiments (e.g. figure.lambda_scale)
