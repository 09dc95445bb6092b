"""Re-render the tables and figures of an existing run or sweep directory: ``python experiments/render.py DIR``.

Runs the ``render`` entries saved with the directory's config (``multirun.yaml`` or ``.hydra/config.yaml``)
and, for a sweep, rewrites ``summary.csv``/``summary.md``. ``--only table`` runs the named entries only. Only the
renderers of ``peekaboo.sweep.RENDERER_MODULES`` are run; ``--trust`` runs whatever the saved config names.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `experiments` importable as in run.py

from peekaboo.errors import PeekabooError  # noqa: E402
from peekaboo.sweep import render_directory  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="a run directory or a sweep directory")
    parser.add_argument("--only", nargs="+", help="render entries to run (default: all)")
    parser.add_argument(
        "--trust", action="store_true", help="run renderers outside the allow-list (a config you wrote yourself)"
    )
    args = parser.parse_args(argv)
    try:
        written = render_directory(args.directory, args.only, args.trust)
    except PeekabooError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
