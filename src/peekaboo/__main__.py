"""``python -m peekaboo ...``: the same as ``python run.py ...`` (see ``peekaboo.cli``)."""

from peekaboo.cli import main

if __name__ == "__main__":
    main()
