"""Errors the reference server raises for bad configuration, before it starts.

Each message is one line that names the offending value or file, so the CLI can
print it as is and a Python caller can show it without a traceback.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """An adapter or server configuration that cannot work."""


class ConfigFileError(ConfigError, FileNotFoundError):
    """A certificate, key or CA file that is missing, unreadable or not what it should be."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.filename = path

    def __str__(self) -> str:  # OSError would format errno/filename into the message
        return str(self.args[0])
