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
    "Interrupted",
    "STOPS",
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


class Interrupted(BaseException):
    """SIGINT or SIGTERM stopped a command; ``str()`` says what was kept and how to resume.

    A ``BaseException`` like ``KeyboardInterrupt`` (not a :class:`DeoccError`), so
    ``except Exception`` never swallows it, and not a ``KeyboardInterrupt`` either (typer
    turns that into a silent exit 130). Catch :data:`STOPS` for both. The CLI raises it
    from its signal handlers; a long-running
    library function catches it where it knows what is finished, cleans up what is not, and
    raises a new one with the message (:meth:`with_message`). The CLI prints that line and
    exits ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM).

    Example:
        >>> e = Interrupted("SIGTERM").with_message("out: 3 shards kept")
        >>> e.signal_name, str(e)
        ('SIGTERM', 'out: 3 shards kept')
    """

    def __init__(self, signal_name: str = "SIGINT", message: str = "") -> None:
        super().__init__(message)
        self.signal_name = signal_name

    @classmethod
    def of(cls, e: BaseException) -> Interrupted:
        """``e`` as an :class:`Interrupted` (a plain KeyboardInterrupt is a SIGINT)."""
        return e if isinstance(e, Interrupted) else cls("SIGINT")

    def with_message(self, message: str) -> Interrupted:
        """The same stop with the line the user sees."""
        return Interrupted(self.signal_name, message)


#: what a stop signal raises: Interrupted from the CLI's handlers, KeyboardInterrupt elsewhere
STOPS = (KeyboardInterrupt, Interrupted)
