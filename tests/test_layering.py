"""Imports follow the data flow: inference and evaluation never load the trainer, and the
landmark code never loads synthesis (checked in a fresh interpreter: ``sys.modules``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _loaded(modules: list[str]) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.startswith('deocc_core'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "modules,forbidden",
    [
        (
            ["deocc_core.infer", "deocc_core.infer.pipeline", "deocc_core.infer.run"],
            [
                "deocc_core.train",
                "deocc_core.synth.pipeline",
                "deocc_core.data",
                "deocc_core.segment",
            ],
        ),
        (
            ["deocc_core.eval", "deocc_core.eval.evaluate"],
            ["deocc_core.train", "deocc_core.synth.pipeline", "deocc_core.data"],
        ),
        (["deocc_core.nets", "deocc_core.nets.io"], ["deocc_core.train", "deocc_core.synth"]),
        (
            ["deocc_core.recon"],
            ["deocc_core.nets", "deocc_core.synth", "deocc_core.train", "deocc_core.occluders"],
        ),
        (
            [
                "deocc_core.landmarks.batch",
                "deocc_core.landmarks.find",
                "deocc_core.landmarks.parts",
                "deocc_core.face",
                "deocc_core.face.fit_photos",
            ],
            ["deocc_core.synth", "deocc_core.occluders", "deocc_core.nets", "deocc_core.train"],
        ),
    ],
)
def test_imports_against_the_data_flow_are_absent(modules, forbidden):
    loaded = _loaded(modules)
    assert set(modules) <= loaded  # the check ran on what it names
    bad = sorted(m for m in loaded for f in forbidden if m == f or m.startswith(f + "."))
    assert not bad, f"{modules} import {bad}"
