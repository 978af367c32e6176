"""Shared fixtures: real third-party data from ../shared/data, devices, tolerances.

The shared folder is never copied into the repo. When it is absent, tests that need it
skip with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(
    os.environ.get(
        "DEOCC_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(
            f"real test data not found at {path} "
            "(set DEOCC_SHARED_DATA or put ../shared/data beside the repo)"
        )
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real third-party fixtures (../shared/data)."""
    return _need(SHARED_DATA)


@pytest.fixture(scope="session")
def sfm_dir(shared_data: Path) -> Path:
    """Surrey Face Model files (eos share/)."""
    return _need(shared_data / "3dmm" / "eos_sfm" / "share")


@pytest.fixture(scope="session")
def ddfa_dir(shared_data: Path) -> Path:
    """3DDFA BFM mean mesh and 68-landmark basis."""
    return _need(shared_data / "3dmm" / "3DDFA")


@pytest.fixture(scope="session")
def aflw_dir(shared_data: Path) -> Path:
    """13 AFLW2000-3D samples (jpg + .mat with pt3d_68 and Pose_Para)."""
    return _need(shared_data / "faces" / "PRNet_AFLW2000")


@pytest.fixture(scope="session")
def lp300w_dir(shared_data: Path) -> Path:
    """One 300W-LP sample (jpg + .mat with pt2d)."""
    return _need(shared_data / "faces" / "face3d_300WLP")


@pytest.fixture(scope="session")
def ibug_pts_image(shared_data: Path) -> tuple[Path, Path]:
    """An iBUG 300-W photo and its ground-truth .pts."""
    d = _need(shared_data / "faces" / "eos_examples")
    return d / "image_0010.png", d / "image_0010.pts"


@pytest.fixture(scope="session")
def occluders_dir(shared_data: Path) -> Path:
    """Real occluder images (MaskTheFace templates + cfg, RGBA cut-outs)."""
    return _need(shared_data / "occluders")


@pytest.fixture(scope="session")
def faces_bulk_dir(shared_data: Path) -> Path:
    """64 real photos without landmarks (deepface) and identities.tsv."""
    return _need(shared_data / "faces_bulk" / "deepface")


def _devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=_devices())
def device(request: pytest.FixtureRequest) -> torch.device:
    """cpu always, cuda when present."""
    return torch.device(request.param)


TOLERANCES = {
    np.float32: 1e-4,
    np.float64: 1e-10,
    torch.float32: 1e-4,
    torch.float64: 1e-10,
    torch.bfloat16: 1e-2,
}


def tol(dtype: object) -> float:
    """Absolute tolerance used across the suite for a dtype."""
    return TOLERANCES[dtype]


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic shard folder (64 px, starter model): 48 faces, 12 per shard.

    Renders fitted to the annotated landmarks (64 px is too small for the detector).
    """
    from deocc_core.synth.pipeline import BuildConfig, build

    out = tmp_path_factory.mktemp("shards")
    build(
        BuildConfig(
            source="synthetic",
            out=str(out),
            size=64,
            per_shard=12,
            n_synthetic=48,
            test_fraction=0.25,
            seed=0,
            fit_landmarks="annotated",  # every face gives a sample: counts below are exact
        )
    )
    return out


@pytest.fixture(scope="session")
def tiny_run(tiny_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with a tiny trained generator (64 px, ngf 8, 6 steps)."""
    from _train_config import tiny_train_config

    from deocc_core.train import train

    out = tmp_path_factory.mktemp("run")
    train(
        tiny_train_config(
            tiny_shards,
            out,
            max_steps=6,
            stage2_steps=2,
            val_every=3,
            checkpoint_every=3,
            log_every=1,
        )
    )
    return out


@pytest.fixture(scope="session")
def generator_checkpoint(tmp_path_factory: pytest.TempPathFactory):
    """Factory: a checkpoint file of an untrained 64 px generator (ngf 8, starter 3DMM).

    ``generator_checkpoint(blend="mask", mask_logit=None)``; ``mask_logit`` fixes the
    occlusion-mask channel to a constant logit (G's last layer: zero weights, that bias),
    e.g. -20 (nothing occluded) or +20 (everything occluded).
    """
    from torch import nn

    from deocc_core.morphable.model import load_model
    from deocc_core.nets.checkpoint import save_checkpoint
    from deocc_core.nets.io import GeneratorSpec

    folder = tmp_path_factory.mktemp("generators")

    def make(blend: str = "mask", mask_logit: float | None = None) -> Path:
        path = folder / f"{blend}_{mask_logit}.pt"
        if path.is_file():
            return path
        torch.manual_seed(0)
        G = GeneratorSpec(size=64, ngf=8, blend=blend).build()
        if mask_logit is not None:
            last = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)][-1]
            with torch.no_grad():
                last.weight[:, 3] = 0
                last.bias[3] = mask_logit
        m = load_model("starter")
        cfg = {"size": 64, "ngf": 8, "no_render": False, "blend": blend}
        state = {"config": cfg, "G": G.state_dict(), "step": 0, "epoch": 0, "stage": 1}
        state["data_model"] = {"name": m.name, "sha256": m.sha256}
        return save_checkpoint(path, state)

    return make
