"""Fixtures of the reliability suite (helpers: ``_rel.py``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from _rel import _can_unshare


@pytest.fixture(scope="session")
def tmpfs_ok() -> bool:
    """A private tmpfs can be mounted (user + mount namespace)."""
    if not _can_unshare("-Urm"):
        return False
    d = tempfile.mkdtemp()
    try:
        r = subprocess.run(
            ["unshare", "-Urm", "sh", "-c", f"mount -t tmpfs -o size=64k none {d}"],
            capture_output=True,
            timeout=20,
        )
        return r.returncode == 0
    finally:
        os.rmdir(d)


@pytest.fixture(scope="session")
def as_other_user() -> list[str]:
    """Command prefix that drops root's override of file modes (empty when not root)."""
    if os.geteuid() != 0:
        return []
    if not _can_unshare("-U"):
        pytest.skip("running as root and cannot unshare a user namespace: modes are ignored")
    return ["unshare", "-U"]


@pytest.fixture(scope="session")
def others_numba_cache(built) -> dict[str, str]:
    """``NUMBA_CACHE_DIR`` for :func:`as_other_user`'s children, seeded with our compiled kernels.

    The other user cannot write the in-tree ``__pycache__``, so numba needs a cache folder it
    can write; an empty one made each child compile every kernel from scratch (about a minute
    a child on 2 cores). The seed is a copy of the in-tree cache (after :func:`built`, which
    compiled the render kernels); a kernel not in it is compiled once and saved for the next
    child. Seeding uses numba's own path rule and is skipped (only slower) if that changes.
    """
    d = Path(tempfile.mkdtemp(prefix="deocc-numba-"))
    from numba.core import caching

    locator = getattr(caching, "UserProvidedCacheLocator", None) or getattr(
        caching, "_UserProvidedCacheLocator", None
    )  # renamed in numba 0.60
    subpath = getattr(locator, "get_suitable_cache_subpath", None)
    pkg = Path(__file__).resolve().parents[2] / "deocc_core"
    for src in pkg.rglob("__pycache__/*.nb[ic]") if subpath else ():
        dst = d / subpath(str(src.parents[1] / "x.py"))  # the folder of the source file
        dst.mkdir(exist_ok=True)
        shutil.copy(src, dst / src.name)
    for p in [d, *d.rglob("*")]:
        p.chmod(0o777 if p.is_dir() else 0o666)
    yield {"NUMBA_CACHE_DIR": str(d)}
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture()
def open_tmp():
    """A temp folder every user can enter (pytest's own is private to its owner)."""
    d = Path(tempfile.mkdtemp(prefix="deocc-rel-"))
    d.chmod(0o777)
    yield d
    for p in [d, *d.rglob("*")]:
        if p.is_dir():
            p.chmod(0o777)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """A finished build (synthetic source, 32 px, train + test shards): copy before damaging."""
    from deocc_core.synth.pipeline import BuildConfig, build

    out = tmp_path_factory.mktemp("built") / "shards"
    cfg = BuildConfig(
        source="synthetic",
        out=str(out),
        size=32,
        n_synthetic=8,
        per_shard=2,
        test_count=2,
        seed=3,
        workers=1,
    )
    r = build(cfg)
    assert r.manifest and r.manifest["complete"]
    assert set(r.manifest["splits"]) == {"train", "test"}
    return out


@pytest.fixture()
def shards(built, tmp_path) -> Path:
    """A private copy of :func:`built`."""
    dst = tmp_path / "shards"
    shutil.copytree(built, dst)
    return dst
