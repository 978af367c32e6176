"""The error types the library raises.

The CLI layer turns a :class:`DeoccError` into one red line naming the file and the
problem, and exit code 1; anything else keeps its traceback (it is a bug).
"""

from __future__ import annotations

__all__ = ["DeoccError", "InputError", "FormatError", "ShapeError", "ConfigError"]


class DeoccError(Exception):
    """Base class of every error the user can cause and fix."""


class InputError(DeoccError):
    """A user-supplied file or directory is missing, unreadable or holds bad data."""


class FormatError(DeoccError):
    """A file is readable but not in the format (or format version) expected."""


class ConfigError(DeoccError):
    """Options that cannot work together, or that clash with existing outputs."""


class ShapeError(DeoccError, ValueError):
    """An array argument has the wrong shape, dtype or layout."""
