"""Options declared once: a config dataclass field carries its default, help, units and bounds.

``deocc_core`` never imports typer: :func:`option` stores the command-line facts as field
metadata, and ``tools/_options.py`` turns the fields of a config into typer options (flag
``--field-name``, the default shown in ``--help``, ``min`` / ``max`` enforced). A field's
docstring, default and bounds therefore live in exactly one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["option", "option_help"]


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    units: str | None = None,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    default_help: str | None = None,
    path: str | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A dataclass field with its command-line description.

    Args:
        default: the default value (omit for a required field).
        help: one sentence: what the option does.
        units: e.g. ``"px"``, ``"degrees"``, ``"steps"`` (shown after the help).
        min: inclusive lower bound the command line enforces.
        max: inclusive upper bound the command line enforces.
        choices: the valid values of a string option (listed in the help; the library
            checks them where it uses the value).
        default_help: what the default means when it is not a plain value (``None``
            defaults: e.g. ``"off"``, ``"the shards' resolution"``); shown as the default.
        path: ``"file"``, ``"dir"`` or ``"any"`` for a path given as a string; the command
            line then takes a path (``"dir"`` / ``"file"`` inputs must exist).
        check: ``check(value) -> problem or None``: the command line refuses a value with a
            problem as a usage error (the config should apply the same rule itself).

    Example:
        >>> from dataclasses import dataclass, fields
        >>> @dataclass(frozen=True)
        ... class C:
        ...     size: int = option(256, "Crop side.", units="px", min=32)
        >>> fields(C)[0].default, option_help(fields(C)[0])
        (256, 'Crop side (px).')
    """
    meta = {
        "help": help,
        "units": units,
        "min": min,
        "max": max,
        "choices": choices,
        "default_help": default_help,
        "path": path,
        "check": check,
    }
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def option_help(f: dataclasses.Field) -> str:
    """The help line of a field: its help, its units and its choices.

    Example:
        >>> from dataclasses import dataclass, fields
        >>> @dataclass(frozen=True)
        ... class C:
        ...     device: str = option("auto", "Where to run.", choices=("auto", "cpu", "cuda"))
        >>> option_help(fields(C)[0])
        'Where to run: auto | cpu | cuda.'
    """
    text = f.metadata.get("help", "").rstrip(".")
    if f.metadata.get("choices"):
        text += ": " + " | ".join(f.metadata["choices"])
    if f.metadata.get("units"):
        text += f" ({f.metadata['units']})"
    return text + "." if text else ""
