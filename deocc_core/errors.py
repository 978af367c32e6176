"""The error types the library raises.

The CLI layer turns a :class:`DeoccError` into one red line naming the file and the
problem, and exit code 1; anything else keeps its traceback (it is a bug).
"""

from __future__ import annotations

__all__ = [
    "DeoccError",
    "InputError",
    "SkipInput",
    "FormatError",
    "BadSample",
    "ShapeError",
    "ConfigError",
]


class DeoccError(Exception):
    """Base class of every error the user can cause and fix."""


class InputError(DeoccError):
    """A user-supplied file or directory is missing, unreadable or holds bad data."""


class SkipInput(InputError):
    """One input of a batch that yields nothing (unreadable image, no face found, ...).

    Batch drivers count these by ``reason`` (a short tag) and go on; a ``strict`` caller
    lets it propagate as a one-line error.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class FormatError(DeoccError):
    """A file is readable but not in the format (or format version) expected."""


class BadSample(FormatError):
    """A shard sample that cannot be read or breaks the shard's invariants.

    The message is one line: ``"<shard>: sample <i>: <problem>"``. Training and evaluation
    stop on it, or count and skip it (``--skip-bad``).
    """


class ConfigError(DeoccError):
    """Options that cannot work together, or that clash with existing outputs."""


class ShapeError(DeoccError, ValueError):
    """An array argument has the wrong shape, dtype or layout."""
