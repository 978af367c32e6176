"""Texture coordinates of a morphable model's mesh, from the files users have.

A model may carry its own (the .npz's optional ``uv``: deocc's face model); for the others
they are read at run time:

- Surrey Face Model (eos ``.bin``): its own, read with ``eos-py`` from the file the model was
  loaded from (``MorphableModel.source``). eos stores ``(u, v)`` with v DOWN (image
  convention; its OBJ writer writes ``1 - v``): converted to v up here.
- BFM: 3DDFA_V2 ``configs/BFM_UV.mat`` (key ``UV``, ``[53215, 2]`` float64, v UP: 3DDFA_V2's
  ``process_uv`` flips it to image rows), for the 53,215-vertex BFM (3DDFA folders, BFM2009
  cropped by ``BFM_exp_idx``); for the 38,365-vertex no-neck BFM (3DDFA_V2 ``.pkl``) through
  ``indices.npy`` beside the ``.mat`` (as 3DDFA_V2's ``utils/uv.py`` does). The user
  passes the path: the BFM files are licence-gated and never shipped.
- any model: a ``.npy`` ``[V, 2]`` array of (u, v), v up.

Convention:
    ``[V, 2]`` float32 (u, v) in [0, 1], v UP (the OBJ ``vt`` convention, as
    :func:`deocc_core.render.obj.write_obj` takes them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from deocc_core.errors import FormatError, InputError
from deocc_core.morphable.model import MorphableModel

__all__ = ["load_uv", "BFM_VERTICES", "BFM_NONECK_VERTICES"]

BFM_VERTICES = 53215  # BFM2009 with the 3DDFA expression crop (BFM_UV.mat rows)
BFM_NONECK_VERTICES = 38365  # 3DDFA_V2's no-neck BFM (indices.npy entries)


def _sfm_uv(source: Path) -> npt.NDArray[np.float32]:
    import eos  # lazily: only Surrey models need it

    uv = np.asarray(eos.morphablemodel.load_model(str(source)).get_texture_coordinates())
    if uv.size == 0:
        raise FormatError(f"{source}: the Surrey model file holds no texture coordinates")
    return np.stack([uv[:, 0], 1.0 - uv[:, 1]], 1).astype(np.float32)  # v down → v up


def _bfm_uv(path: Path, n_vertices: int) -> npt.NDArray[np.float32]:
    import scipy.io

    try:
        uv = np.asarray(scipy.io.loadmat(str(path))["UV"], np.float32)
    except (KeyError, ValueError, OSError) as e:
        raise FormatError(f"{path}: not a BFM_UV.mat (needs a 'UV' array; {e})") from None
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise FormatError(f"{path}: UV must be [V, 2], got {list(uv.shape)}")
    if n_vertices == len(uv):
        return uv
    idx_file = path.parent / "indices.npy"
    if n_vertices == BFM_NONECK_VERTICES and idx_file.is_file():
        idx = np.load(idx_file).astype(np.int64).reshape(-1)
        if len(idx) == n_vertices and idx.max() < len(uv):
            return uv[idx]
    raise FormatError(
        f"{path}: {len(uv)} texture coordinates for a {n_vertices}-vertex model "
        f"(the no-neck BFM needs indices.npy beside the .mat)"
    )


def load_uv(
    model: MorphableModel, path: str | Path | None = None
) -> npt.NDArray[np.float32] | None:
    """The model's texture coordinates (see module docstring), or None when it has none.

    Cached on the model per path.

    Args:
        model: the morphable model.
        path: a ``BFM_UV.mat`` or ``.npy`` file; None: the model's own (Surrey ``.bin``).

    Returns:
        ``[V, 2]`` float32 (u, v), v up, or None (no path and no coordinates of its own).

    Raises:
        InputError: ``path`` does not exist.
        FormatError: unreadable file, or coordinates that do not match the model's vertices.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> load_uv(load_model("starter")) is None
        True
    """
    cache = model.__dict__.setdefault("_uv_cache", {})  # frozen dataclass: cache in __dict__
    key = None if path is None else str(path)
    if key in cache:
        return cache[key]
    uv: npt.NDArray[np.float32] | None = None
    if path is None and model.uv is not None:  # a model with its own (deocc-face)
        uv = model.uv
    elif path is None:
        src = Path(model.source) if model.source else None
        if src is not None and src.suffix == ".bin" and src.is_file():
            uv = _sfm_uv(src)
    else:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: texture-coordinate file not found")
        if p.suffix == ".mat":
            uv = _bfm_uv(p, model.n_vertices)
        elif p.suffix == ".npy":
            uv = np.load(p).astype(np.float32)
        else:
            raise FormatError(f"{p}: unknown texture-coordinate format (expected .mat or .npy)")
    if uv is not None:
        if uv.shape != (model.n_vertices, 2):
            raise FormatError(
                f"{path or model.source}: texture coordinates {list(uv.shape)} for a "
                f"{model.n_vertices}-vertex model"
            )
        if not np.isfinite(uv).all() or uv.min() < -1e-3 or uv.max() > 1 + 1e-3:
            raise FormatError(f"{path or model.source}: texture coordinates outside [0, 1]")
        uv = np.ascontiguousarray(np.clip(uv, 0.0, 1.0), np.float32)
    cache[key] = uv
    return uv
