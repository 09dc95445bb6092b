"""One Hydra job: validate, build the data, the Lightning module and trainer, predict, aggregate, report."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from peekaboo.config.build import build
from peekaboo.config.describe import describe_model, describe_schedule
from peekaboo.config.validate import validate
from peekaboo.data.base import check_item_ids
from peekaboo.data.subset import select_items
from peekaboo.errors import ConfigError

log = logging.getLogger("peekaboo")

# Keys that do not change any item's result: excluded from the hash that guards resumption.
NOT_RESULT_AFFECTING = ("trainer", "logger", "run_name", "resume", "print_items", "contact_sheet", "subset", "render")


def config_hash(cfg: DictConfig) -> str:
    container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    kept = {k: v for k, v in container.items() if k not in NOT_RESULT_AFFECTING}
    kept["param"]["recipe"].pop("batch_size", None)  # a tuning's trainer.batch_size: as the trainer, not hashed
    return hashlib.sha1(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


def quiet_libraries() -> None:
    """Keep the console for our progress and results: silence loading bars and advisory warnings."""
    import diffusers
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    diffusers.logging.set_verbosity_error()
    diffusers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def output_directory() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


def variant_record(cfg: DictConfig) -> dict[str, Any]:
    """Which preset of each group produced an item (copied into every result.json)."""
    return {
        group: OmegaConf.select(cfg, f"{group}.name")
        for group in ("method", "model", "param", "optimizer", "loss", "guidance_map", "schedule", "data", "task")
    }


def build_logger(cfg: DictConfig, output_dir: Path):
    """The W&B logger (or None): grouped by sweep directory and named by the job's overrides by default."""
    if not cfg.logger.get("_target_"):
        return None
    from hydra.types import RunMode

    from peekaboo.loggers import run_names

    hydra_cfg = HydraConfig.get()
    group, name = run_names(output_dir, hydra_cfg.job.override_dirname, hydra_cfg.mode == RunMode.MULTIRUN)
    logger = build(
        cfg.logger,
        "table_rows",
        "live_curves",
        "live_every",
        save_dir=str(output_dir),
        group=cfg.logger.group or group,
        run_name=cfg.logger.run_name or name,
    )
    logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    return logger


def build_trainer(cfg: DictConfig, output_dir: Path, logger, callbacks):
    """``cfg.trainer`` as a ``lightning.Trainer``; predict steps optimise, so inference mode is always off."""
    trainer = build(
        cfg.trainer,
        "batch_size",
        "num_workers",
        logger=logger or False,
        callbacks=callbacks,
        inference_mode=False,
        default_root_dir=str(output_dir),
    )
    check_launcher(trainer)
    return trainer


def check_launcher(trainer) -> None:
    """Plain ``ddp`` re-executes the command line in child processes; under ``-m`` that is the whole sweep."""
    from hydra.types import RunMode
    from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

    launcher = getattr(trainer.strategy, "launcher", None)
    if isinstance(launcher, _SubprocessScriptLauncher) and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError(
            "trainer.strategy",
            "strategy 'ddp' re-launches this command (the whole sweep) in every child process under -m; use "
            "trainer=ddp_spawn for multi-device sweeps (or launch one process per device with SLURM/torchrun)",
        )


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Run one job; returns the run's metrics on rank 0 (None on other ranks). The process that starts the job
    holds the run directory's lock throughout (``peekaboo.io.lock``); ranks it launches do not take it."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from peekaboo.io.lock import run_lock

    validate(cfg)
    chash = config_hash(cfg)
    if rank_zero_only.rank != 0:
        return _run(cfg, chash)
    with run_lock(output_directory(), chash):
        return _run(cfg, chash)


def _run(cfg: DictConfig, chash: str) -> dict[str, Any] | None:
    from peekaboo.evaluation.reports import contact_sheet, format_table
    from peekaboo.evaluation.results import collect
    from peekaboo.lightning.datamodule import ItemDataModule
    from peekaboo.lightning.progress import ItemProgress
    from peekaboo.lightning.writer import ItemWriter
    from peekaboo.loggers import WandbLiveCurves, log_run_results

    quiet_libraries()
    log.info(describe_model(cfg))
    log.info(describe_schedule(cfg))
    output_dir = output_directory()
    dataset = select_items(build(cfg.data), cfg.subset)
    item_ids = list(dataset.item_ids)
    check_item_ids(item_ids, f"data={cfg.data.name}")
    module = get_class(cfg.method._target_)(cfg, {"config_hash": chash, "variant": variant_record(cfg)})
    # schedule.stop=converged: one item per predict step into trainer.batch_size slots (peekaboo.lightning.stream)
    loader_batch = 1 if getattr(module, "continuous", False) else cfg.trainer.batch_size
    datamodule = ItemDataModule(dataset, output_dir, chash, loader_batch, cfg.trainer.num_workers, cfg.resume)
    logger = build_logger(cfg, output_dir)
    callbacks = [ItemWriter(output_dir, item_ids)]
    if cfg.trainer.enable_progress_bar:
        callbacks.append(ItemProgress())
    if logger is not None and cfg.logger.live_curves:
        callbacks.append(WandbLiveCurves(cfg.logger.live_every))
    try:
        trainer = build_trainer(cfg, output_dir, logger, callbacks)
        trainer.predict(module, datamodule=datamodule, return_predictions=False)
        if not trainer.is_global_zero:
            return None
        metrics = json.loads((output_dir / "metrics.json").read_text())
        if logger is not None:
            log_run_results(logger, metrics, dataset, output_dir, item_ids, cfg.logger.table_rows)
    finally:
        if logger is not None:
            logger.experiment.finish()
    if cfg.contact_sheet:
        contact_sheet(dataset, output_dir, item_ids, cfg.contact_sheet)
    # Logged, not printed: Hydra's job log (run.log) keeps the table and metrics next to the console's copy.
    log.info("results\n%s", format_table(collect(output_dir, item_ids), metrics, cfg.print_items))
    log.info("outputs in %s", output_dir)
    return metrics
