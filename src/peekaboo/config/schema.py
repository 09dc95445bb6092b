"""The top-level config schema and the schemas of the small groups (schedule, trainer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from peekaboo.engine.stopping import ConvergedConfig, StopRule
from peekaboo.objective import LossConfig
from peekaboo.params.parametrization import ParamConfig


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
    """Schema of ``trainer``: Lightning Trainer arguments plus how many items share one predict step."""

    name: str = "cpu"
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    batch_size: int = 1  # items optimised together (their prompts and backgrounds share each UNet call)
    num_workers: int = 0
    enable_progress_bar: bool = True


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
