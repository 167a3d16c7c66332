"""User-facing errors: the CLI prints these without a stack trace (exit code 2)."""

from __future__ import annotations

# sysexits' EX_TEMPFAIL: another run holds the warehouse; a scheduler may retry later (``ucx`` and
# the spark-submit jobs alike)
EXIT_BUSY = 75


class UcxError(Exception):
    """A mistake the user can fix: bad config, bad arguments, missing input."""


class ConfigError(UcxError):
    """A configuration value is missing or not allowed; the message names file and key."""


class DataError(UcxError):
    """Input data breaks the contract in a way that stops the step."""
