"""typer options generated from config dataclasses (see ``deocc_core/options.py``).

A command declares only what is not a config field (``--resume``, ``--version``, ...); the
config's fields become options named ``--field-name`` (``--<parent>-<field>`` for a nested
config such as ``TrainConfig.augment``), with the field's default, help, units and bounds.
Every option shows its default in ``--help``.

    @app.command()
    @with_options(config_params(TrainConfig))
    def run(resume: bool = typer.Option(...), **values: Any) -> None:
        cfg = build_config(TrainConfig, values)
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from deocc_core.options import option_help

__all__ = ["config_params", "with_options", "build_config", "field_help", "field_default"]

_KW = inspect.Parameter.KEYWORD_ONLY


def _base_type(t: Any) -> tuple[Any, bool]:
    """``X | None`` → ``(X, True)``; ``X`` → ``(X, False)``."""
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return t, False


def _field(cls: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def field_help(cls: type, name: str) -> str:
    """The help text of a config field (for an option a command declares by hand)."""
    return escape(option_help(_field(cls, name)))


def field_default(cls: type, name: str) -> Any:
    """The default of a config field."""
    return _field(cls, name).default


def _option(
    f: dataclasses.Field, t: Any, name: str, default: Any, show: str | None
) -> inspect.Parameter:
    """One typer option for field ``f`` (python name ``name``)."""
    base, _ = _base_type(t)
    meta = f.metadata
    flag = "--" + name.replace("_", "-")
    kw: dict[str, Any] = {"help": escape(option_help(f))}
    if show is None:
        show = meta.get("default_help")
    if show is None and default is None:
        raise TypeError(f"option {flag}: a None default needs default_help (what None means)")
    if base is bool:
        decls = (flag,) if default is False else (f"{flag}/--no-{flag[2:]}",)
        show = show if show is not None else ("off" if default is False else None)
    else:
        decls = (flag,)
    if show is not None:
        kw["show_default"] = show
    kw.update(_bounds(meta, base, flag))
    if meta.get("path"):
        base = Path
        if meta["path"] in ("dir", "file", "any"):
            kw.update(exists=True, file_okay=meta["path"] != "dir", dir_okay=meta["path"] != "file")
        if isinstance(default, str):
            default = Path(default)
    if base not in (int, float, str, bool, Path):
        raise TypeError(f"option {flag}: no command-line form for {t!r}; declare it by hand")
    opt = typer.Option(default, *decls, **kw)
    return inspect.Parameter(name, _KW, default=opt, annotation=base)


def _bounds(meta: Any, base: Any, flag: str) -> dict[str, Any]:
    """The ``min`` / ``max`` and a ``callback`` for ``check`` or ``choices`` (exit 2)."""
    kw = {k: meta[k] for k in ("min", "max") if meta.get(k) is not None}
    check = meta.get("check")
    if check is None and meta.get("choices") and base is str:
        check = _one_of(tuple(meta["choices"]))
    if check is not None:
        kw["callback"] = _checked(check, flag)
    return kw


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    """A ``check`` accepting only ``choices``."""

    def check(value: Any) -> str | None:
        if value in choices:
            return None
        return f"must be one of {', '.join(choices)}, got {value!r}"

    return check


def _checked(check: Callable[[Any], str | None], flag: str) -> Callable[[Any], Any]:
    """A typer callback applying a field's ``check`` (a usage error, exit 2)."""

    def callback(value: Any) -> Any:
        problem = None if value is None else check(value)
        if problem:
            raise typer.BadParameter(f"{flag} {problem}")
        return value

    return callback


def config_params(
    cls: type,
    *,
    prefix: str = "",
    exclude: Iterable[str] = (),
    only: Iterable[str] | None = None,
    defaults: dict[str, Any] | None = None,
    show_defaults: dict[str, str] | None = None,
) -> list[inspect.Parameter]:
    """Typer parameters for the fields of a config dataclass (nested configs included).

    Args:
        cls: the config dataclass (fields declared with ``deocc_core.options.option``).
        prefix: python-name prefix (``"augment_"`` for ``TrainConfig.augment``); set for
            nested configs automatically.
        exclude: field names (with prefix) the command declares by hand or fixes.
        only: if given, just these field names (with prefix; a nested config's name
            selects all its fields).
        defaults: command-specific defaults (e.g. ``synth-occ preview`` crops 128 px).
        show_defaults: what a command-specific default means, shown in ``--help``.

    Raises:
        TypeError: a field without a command-line form (a tuple, say) that is not excluded,
            or a None default without ``default_help``.
    """
    exclude, defaults, show_defaults = set(exclude), defaults or {}, show_defaults or {}
    only = None if only is None else set(only)
    hints = typing.get_type_hints(cls)
    params: list[inspect.Parameter] = []
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if name in exclude or (only is not None and name not in only):
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            params += config_params(
                hints[f.name],
                prefix=name + "_",
                exclude=exclude,
                defaults=defaults,
                show_defaults=show_defaults,
            )
            continue
        default = defaults.get(name, ... if f.default is dataclasses.MISSING else f.default)
        params.append(_option(f, hints[f.name], name, default, show_defaults.get(name)))
    return params


def with_options(*groups: list[inspect.Parameter]) -> Callable[[Callable], Callable]:
    """Add generated parameters to a command; they arrive in its ``**values``.

    The generated options come first in ``--help``, then the command's own parameters.
    """

    def deco(fn: Callable) -> Callable:
        hints = typing.get_type_hints(fn)
        own = [
            p.replace(kind=_KW, annotation=hints.get(p.name, p.annotation))
            for p in inspect.signature(fn).parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        params = [p for g in groups for p in g] + own
        names = [p.name for p in params]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise TypeError(f"{fn.__name__}: parameters declared twice: {', '.join(dup)}")

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            return fn(**kwargs)

        del command.__wrapped__  # typer must read the generated signature, not fn's
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return deco


def build_config(cls: type, values: dict[str, Any], *, prefix: str = "", **fixed: Any) -> Any:
    """The config from parsed option values (paths back to strings; nested configs built).

    Args:
        cls: the config dataclass.
        values: the command's ``**values``.
        prefix: for a nested config.
        **fixed: field values the command sets itself.
    """
    hints = typing.get_type_hints(cls)
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if f.name in fixed:
            kw[f.name] = fixed[f.name]
        elif dataclasses.is_dataclass(hints[f.name]):
            kw[f.name] = build_config(hints[f.name], values, prefix=name + "_")
        elif name in values:
            v = values[name]
            kw[f.name] = str(v) if isinstance(v, Path) else v
    return cls(**kw)
