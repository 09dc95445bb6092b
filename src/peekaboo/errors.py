"""User-facing errors: each says what is wrong and what to do, and is printed without a traceback."""


class PeekabooError(Exception):
    """Base class of the errors that the command line reports as a one-paragraph message."""


class ConfigError(PeekabooError, ValueError):
    """A configuration value is invalid; the message names the key."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config error at '{key}': {message}")


class DataError(PeekabooError, ValueError):
    """A dataset file or item cannot be used; the message names the file or item."""


class ModelLoadError(PeekabooError, OSError):
    """Pretrained weights could not be found or loaded; the message says where we looked and how to fix it."""
