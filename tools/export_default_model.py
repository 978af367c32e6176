"""Package a trained generator as the shipped default model: safetensors + model card.

    python -m tools.export_default_model RUN_OR_CHECKPOINT
        [--out assets/default_model.safetensors] [--scores EVAL/results.json]
        [--command "how the data and the run were made"]... [--data-note TEXT]

Writes ``<out>`` (fp16 weights, no pickle; what ``deocc-infer`` loads when no ``--ckpt`` is
given) and ``<out stem>.md`` beside it (the model card: data and its terms, resolution,
steps, G's blend and input, for a given-mask G the segmenter it needs, scores, the
commands). The same inputs give byte-identical files. A file over :data:`MAX_MB` MB is
refused (the repository ships it).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__" and __package__ in (None, ""):  # python tools/export_default_model.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import typer  # noqa: E402

from deocc_core.errors import ConfigError, InputError  # noqa: E402
from tools._cli import (  # noqa: E402
    VERBOSE_OPTION,
    VERSION_OPTION,
    esc,
    make_app,
    run_app,
    setup_logging,
    stdout,
)

app = make_app(
    "export-default-model",
    "Package a run or checkpoint as safetensors + model card (the shipped default model).",
    group=False,
)

DEFAULT_OUT = Path("assets") / "default_model.safetensors"
MAX_MB = 25  # the shipped model lives in the repository


def _flags(values: dict[str, Any], defaults: dict[str, Any], skip: set[str]) -> list[str]:
    """``--field-name value`` for every field that differs from its default."""
    out = []
    for k, v in values.items():
        if k in skip or k not in defaults or v == defaults[k] or isinstance(v, dict):
            continue
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else f"--no-{flag[2:]}")
        elif isinstance(v, (list, tuple)):
            out.append(f"{flag} {shlex.quote(','.join(map(str, v)))}")
        elif v is not None:
            out.append(f"{flag} {shlex.quote(str(v))}")
    return out


def _defaults(cls: type) -> dict[str, Any]:
    return {
        f.name: f.default
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING and not dataclasses.is_dataclass(f.default)
    }


def reconstructed_commands(info: dict[str, Any]) -> list[str]:
    """The build and training commands of a run, rebuilt from the configs it saved.

    Args:
        info: the export's ``deocc`` metadata (``config``, ``data_config``).
    """
    from deocc_core.synth.manifest import build_configs
    from deocc_core.synth.pipeline import BuildConfig
    from deocc_core.train.config import TrainConfig

    lines = ["# reconstructed from the configs saved in the run"]
    builds = build_configs((info.get("data_config") or {}).get("config"))
    for k, b in enumerate(builds):
        out = "SHARDS" if len(builds) == 1 else f"SHARDS_{k}"
        words = ["synth-occ build", f"--source {b.get('source')}", f"--out {out}"]
        # a saved config without max_padding is a build from before --max-padding: every face
        words += _flags({"max_padding": 1.0, **b}, _defaults(BuildConfig), {"source", "out"})
        lines.append(" ".join(words))
    if len(builds) > 1:
        lines.append(
            "synth-occ merge "
            + " ".join(f"SHARDS_{k}" for k in range(len(builds)))
            + " --out SHARDS"
        )
    cfg = info["config"]
    words = ["deocc-train", "--shards SHARDS", f"--out {shlex.quote(str(cfg.get('out')))}"]
    words += _flags(cfg, _defaults(TrainConfig), {"shards", "out", "device", "workers"})
    lines.append(" ".join(words))
    return lines


@app.command()
def run(
    source: Path = typer.Argument(
        ..., exists=True, help="Run folder (best.pt, else latest.pt) or checkpoint file."
    ),
    out: Path = typer.Option(
        DEFAULT_OUT, "--out", help=f"The .safetensors file [default: {DEFAULT_OUT}]."
    ),
    scores: Path = typer.Option(
        None,
        "--scores",
        exists=True,
        dir_okay=False,
        help="deocc-eval results.json to put in the card [default: none].",
    ),
    command: list[str] = typer.Option(
        [],
        "--command",
        help="A command that made the model (repeat, in order) [default: rebuilt from the run's "
        "configs].",
    ),
    data_note: str = typer.Option(
        "", "--data-note", help="The training data and its terms, in words [default: none]."
    ),
    fp32: bool = typer.Option(
        False, "--fp32", help="Keep float32 weights (default: float16, half the size)."
    ),
    version: bool = VERSION_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Write OUT (.safetensors) and its model card OUT.md."""
    setup_logging(verbose)
    from deocc_core.nets.packaged import SAFETENSORS_SUFFIX, export_generator, model_card
    from deocc_core.synth.manifest import read_manifest

    if out.suffix != SAFETENSORS_SUFFIX:
        raise typer.BadParameter(f"--out must end in {SAFETENSORS_SUFFIX}, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    result = export_generator(source, out, half=not fp32)
    if result.bytes > MAX_MB * 1e6:
        result.path.unlink()
        raise ConfigError(
            f"{out}: {result.bytes / 1e6:.1f} MB is over the {MAX_MB} MB a shipped model may "
            "take (train a smaller --ngf)"
        )
    results = json.loads(scores.read_text()) if scores else None
    shards = Path(str(result.info["config"].get("shards", "")))
    try:
        splits = read_manifest(shards)["splits"] if shards.is_dir() else None
    except Exception:  # a moved or partial shard folder: the card just lacks the counts
        splits = None
    commands = list(command) or reconstructed_commands(result.info)
    words = [str(source), "--out", str(out)] + (["--scores", str(scores)] if scores else [])
    words += ["--command", "..."] * len(command) + (["--fp32"] if fp32 else [])
    line = "python -m tools.export_default_model " + shlex.join(words)
    commands.append(line + (' --data-note "<the Data section>"' if data_note else ""))
    card = out.with_suffix(".md")
    text = model_card(
        result, scores=results, commands=tuple(commands), data_note=data_note, splits=splits
    )
    try:
        card.write_text(text)
    except OSError as e:
        raise InputError(f"{card}: cannot write: {(e.strerror or str(e)).lower()}") from None
    stdout.print(
        f"{esc(result.path)}: {result.bytes:,} bytes ({result.dtype}, {result.n_params:,} "
        f"parameters), sha256 {result.sha256[:16]}; card {esc(card)}",
        highlight=False,
    )


def main() -> None:
    """The export tool's entry point."""
    run_app(app, "export-default-model")


if __name__ == "__main__":
    main()
