"""Wavefront OBJ export with per-vertex colours (the de-occluded textured mesh)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["write_obj", "read_obj"]


def write_obj(path: str | Path, vertices: npt.NDArray[np.floating], triangles: npt.NDArray[np.integer], colors: npt.NDArray[np.floating] | None = None) -> Path:
    """Write ``v x y z [r g b]`` lines (colours in [0, 1]) and 1-based ``f`` lines.

    Args:
        vertices: ``[V, 3]``. triangles: ``[T, 3]`` 0-based. colors: ``[V, 3]`` in [0, 1].

    Example:
        >>> import tempfile, os
        >>> p = write_obj(os.path.join(tempfile.mkdtemp(), "t.obj"), np.eye(3), np.array([[0, 1, 2]]))
        >>> [a.shape for a in read_obj(p)]
        [(3, 3), (1, 3)]
    """
    path = Path(path)
    v = np.asarray(vertices, np.float64)
    cols = [v] if colors is None else [v, np.clip(np.asarray(colors, np.float64), 0, 1)]
    fmt = "v %.4f %.4f %.4f" + (" %.4f %.4f %.4f" if colors is not None else "")
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w") as f:
        f.write("# deocc mesh\n")
        np.savetxt(f, np.concatenate(cols, 1), fmt=fmt)
        np.savetxt(f, np.asarray(triangles, np.int64) + 1, fmt="f %d %d %d")
    tmp.replace(path)
    return path


def read_obj(path: str | Path) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Read vertices ``[V, 3]`` and triangles ``[T, 3]`` (0-based) from an OBJ (positions only)."""
    verts, faces = [], []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "v":
            verts.append([float(x) for x in parts[1:4]])
        elif parts and parts[0] == "f":
            faces.append([int(x.split("/")[0]) - 1 for x in parts[1:4]])
    return np.array(verts, np.float32).reshape(-1, 3), np.array(faces, np.int32).reshape(-1, 3)
