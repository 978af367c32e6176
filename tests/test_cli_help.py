"""Every option of every command shows its default in --help; options come from the configs."""

from __future__ import annotations

import pytest
import typer
from _inproc import run_main
from typer.core import TyperGroup, TyperOption

from tools import deocc_eval, deocc_infer, deocc_train, synth_occ, train_segmenter

META = {"help", "version", "verbose"}


def _commands(app: typer.Typer, prefix: str):
    cmd = typer.main.get_command(app)
    if isinstance(cmd, TyperGroup):
        for name, sub in cmd.commands.items():
            if isinstance(sub, TyperGroup):
                yield from ((f"{prefix} {name} {n}", c) for n, c in sub.commands.items())
            else:
                yield f"{prefix} {name}", sub
    else:
        yield prefix, cmd


ALL = [
    c
    for app, name in (
        (synth_occ.app, "synth-occ"),
        (deocc_train.app, "deocc-train"),
        (deocc_infer.app, "deocc-infer"),
        (deocc_eval.app, "deocc-eval"),
        (train_segmenter.app, "train-segmenter"),
    )
    for c in _commands(app, name)
]


@pytest.mark.parametrize("name,cmd", ALL, ids=[n for n, _ in ALL])
def test_every_option_shows_its_default(name, cmd):
    missing = []
    for o in cmd.params:
        if not isinstance(o, TyperOption) or o.required or o.name in META:
            continue
        one_sided_off = o.is_flag and not o.secondary_opts and o.default is False
        shown = isinstance(o.show_default, str) or (
            o.show_default is not False and o.default is not None and not one_sided_off
        )
        if not shown:
            missing.append(o.opts[0])
        assert "default:" not in (o.help or "").lower(), f"{name} {o.opts[0]}: hand-written default"
    assert not missing, f"{name}: no default shown for {', '.join(missing)}"


def test_infer_help_shows_the_output_folder_default():
    r = run_main("deocc_infer", "--help")  # in this process: see _inproc.py
    assert "Output folder. [default: infer_out]" in r.stdout, r.stdout


def test_options_are_generated_from_the_config_fields():
    from deocc_core.train.config import TrainConfig

    cmd = typer.main.get_command(deocc_train.app)
    flags = {o.opts[0]: o for o in cmd.params if isinstance(o, TyperOption)}
    for f in ("--lr-stage1", "--augment-scale", "--augment-flip", "--beta1", "--no-render"):
        assert f in flags, f
    assert flags["--lr-stage1"].default == TrainConfig.__dataclass_fields__["lr_stage1"].default
    assert flags["--val-fraction"].max == 0.5
