"""Entry point: ``python run.py [group=option ...] [key=value ...] [-m]``. See README.md."""

import hydra

from peekaboo.cli import run_reporting_errors
from peekaboo.config.store import register_configs

register_configs()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    return run_reporting_errors(cfg)


if __name__ == "__main__":
    main()
