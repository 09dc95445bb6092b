"""``python -m peekaboo.app [--host H] [--port P]`` (``make app``): serve the web demo until interrupted."""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m peekaboo.app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on")
    args = parser.parse_args(argv)
    try:
        from peekaboo.app.layout import THEME, build
    except ModuleNotFoundError as error:
        if error.name != "gradio":
            raise
        sys.exit("the web demo needs gradio: pip install -e '.[app]' (make app installs it)")
    from peekaboo.app.logic import warm_up

    threading.Thread(target=warm_up, name="peekaboo-app-warm-up", daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="peekaboo-app-") as workdir:
        demo = build(Path(workdir)).queue(default_concurrency_limit=1)
        demo.launch(server_name=args.host, server_port=args.port, allowed_paths=[workdir], theme=THEME,
                    footer_links=[], show_error=False)


if __name__ == "__main__":
    main()
