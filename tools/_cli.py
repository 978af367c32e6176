"""What the four console scripts share: error handling, logging, progress bars.

The CLI layer parses and reports; ``deocc_core`` computes. A :class:`DeoccError` (a user
or data problem) becomes one red line and exit code 1; a usage error (unknown option,
missing input, unwritable output directory) one line and exit code 2; anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from deocc_core import __version__
from deocc_core.errors import STOPS, DeoccError, Interrupted
from deocc_core.fileio import os_reason
from deocc_core.imageio import IMAGE_SUFFIXES

__all__ = [
    "esc",
    "make_app",
    "run_app",
    "setup_logging",
    "progress_bar",
    "writable_dir",
    "image_out",
    "strict_exit",
    "batch_exit",
    "stderr",
    "stdout",
    "VERSION_OPTION",
    "VERBOSE_OPTION",
]

stderr = Console(stderr=True)
stdout = Console()


def esc(text: object) -> str:
    """User text (paths, messages) made safe for rich markup: ``photo[bold].jpg`` prints as is.

    Example:
        >>> from rich.text import Text
        >>> Text.from_markup(f"[red]{esc('photo[bold].jpg')}[/red]").plain
        'photo[bold].jpg'
    """
    return escape(str(text))


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"deocc {__version__}")
        raise typer.Exit()


# For single-command scripts (deocc-train, deocc-infer, deocc-eval): add these two
# parameters to the command and call setup_logging(verbose) first thing.
VERSION_OPTION = typer.Option(
    False,
    "--version",
    callback=_version_callback,
    is_eager=True,
    help="Print the version and exit.",
)
VERBOSE_OPTION = typer.Option(False, "--verbose", "-v", help="Log debug messages.")


def make_app(name: str, help: str, *, group: bool = True) -> typer.Typer:
    """A typer app. ``group=True``: subcommands, with ``--version``/``--verbose`` on the group.

    ``group=False``: a single-command script; its command takes VERSION_OPTION/VERBOSE_OPTION.
    """
    app = typer.Typer(
        name=name,
        help=help,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    if not group:
        return app

    @app.callback()
    def _main(
        version: bool = typer.Option(
            False,
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
    ) -> None:
        setup_logging(verbose)

    return app


def setup_logging(verbose: bool = False) -> None:
    """Route library logging to stderr through rich, once per process."""
    root = logging.getLogger()
    if any(isinstance(h, RichHandler) for h in root.handlers):
        return
    handler = RichHandler(console=stderr, show_path=False, rich_tracebacks=False, markup=False)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", handlers=[handler]
    )
    for noisy in ("numba", "matplotlib", "PIL", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_app(app: typer.Typer, prog: str, argv: list[str] | None = None) -> None:
    """Run a typer app and map errors to exit codes (see module docstring). Never returns.

    SIGINT and SIGTERM raise :class:`~deocc_core.errors.Interrupted` (the library cleans up
    and says what it kept); the command ends with that line and exit ``128 + signal``.
    """
    _stop_on_signals()
    try:
        code = app(args=argv, prog_name=prog, standalone_mode=False)
    except typer.TyperException as e:  # usage errors (exit 2): bad option, missing path, ...
        stderr.print(
            f"[red]{prog}: {esc(e.format_message())}[/red]", highlight=False, soft_wrap=True
        )
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, *STOPS) as e:
        _stopped(prog, Interrupted.of(e))
    except DeoccError as e:
        _debug_traceback()
        stderr.print(f"[red]{prog}: {esc(e)}[/red]", highlight=False, soft_wrap=True)
        sys.exit(1)
    except OSError as e:
        if e.errno not in ENVIRONMENT_ERRNOS:
            raise  # a bug: keep its traceback
        _debug_traceback()
        where = f"{e.filename}: " if e.filename else ""
        stderr.print(f"[red]{prog}: {esc(where + os_reason(e))}[/red]", highlight=False)
        sys.exit(1)
    if code == 130:  # typer's silent exit for a KeyboardInterrupt that was not ours
        _stopped(prog, Interrupted("SIGINT"))
    sys.exit(code if isinstance(code, int) else 0)


def _stopped(prog: str, stop: Interrupted) -> None:
    """The last line of a command a signal stopped (what was kept); exit 128 + signal."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the line below is the last word
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    said = str(stop) or "nothing was written after the last complete output"
    stderr.print(
        f"[red]{prog}: stopped by {stop.signal_name}: {esc(said)}[/red]",
        highlight=False,
        soft_wrap=True,
    )
    sys.exit(128 + int(getattr(signal, stop.signal_name, signal.SIGINT)))


def _stop_on_signals() -> None:
    """Make SIGINT / SIGTERM raise Interrupted in the main thread.

    SIGTERM's default ends the process at once: no cleanup, workers orphaned, nothing said.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    for s in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(s) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(s, handler)


# write errors a user fixes (free space, permissions), not bugs: one line, exit 1
ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}
)


def _debug_traceback() -> None:
    """With ``--verbose`` a user error also shows where it was raised."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        stderr.print_exception()


def writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and check it is writable; a usage error otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise typer.BadParameter(f"cannot create output directory {path}: {e.strerror}") from None
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"output directory {path} is not writable")
    return path


@contextmanager
def progress_bar(
    description: str, total: int | None = None, unit: str = "it"
) -> Iterator[Callable[..., None]]:
    """A rich progress bar; yields ``advance(n=1, total=None)`` for library callbacks.

    Shows rate in ``unit``/s and ETA. Quiet (no bar) when stderr is not a terminal.
    """
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(
        *columns, console=stderr, transient=False, disable=not stderr.is_terminal
    ) as progress:
        task = progress.add_task(description, total=total, rate="")

        def advance(n: int = 1, total: int | None = None) -> None:
            if total is not None:
                progress.update(task, total=total)
            progress.advance(task, n)
            speed = progress.tasks[task].speed
            progress.update(task, rate=f"{speed:.1f} {unit}/s" if speed else "")

        yield advance


def image_out(path: Path, option: str) -> Path:
    """Check an image output path (``--out x.png``); a usage error naming ``option`` if not.

    The path must not be a folder, must end in an image suffix, and its folder is created
    and must be writable.
    """
    if path.is_dir():
        raise typer.BadParameter(f"{option} {path} is a folder; give an image file name (.png)")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise typer.BadParameter(
            f"{option} {path}: an image file name ends in {', '.join(IMAGE_SUFFIXES)}"
        )
    writable_dir(path.parent if str(path.parent) else Path("."))
    return path


def strict_exit(skipped: int, strict: bool, what: str = "input(s)") -> None:
    """With ``--strict``, skipped inputs make the exit code 1 (call after the summary)."""
    if strict and skipped:
        raise DeoccError(f"{skipped} {what} skipped (--strict)")


def batch_exit(made: int, skipped: int, strict: bool, what: str = "input(s)") -> None:
    """The exit rule of a batch command (call after its summary and skip table).

    Nothing made (every input skipped, or none usable) exits 1: a script that chains
    commands must be able to tell. A partial success exits 0 and says how many were
    skipped, unless ``--strict``, where any skip exits 1.

    Args:
        made: outputs written (faces, photos, samples: what the command counts).
        skipped: inputs skipped.
        strict: the command's ``--strict``.
        what: what ``skipped`` counts, for the message.
    """
    if made == 0:
        raise DeoccError(
            f"nothing written: all {skipped} {what} skipped" if skipped else "nothing written"
        )
    strict_exit(skipped, strict, what)
    if skipped:
        stdout.print(f"[yellow]partial: {skipped} {what} skipped, the rest written[/yellow]")
