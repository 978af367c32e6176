"""Wavefront OBJ export/import with per-vertex colours, optionally a UV texture (.mtl + PNG)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.errors import FormatError, InputError

__all__ = ["write_obj", "read_obj"]


def _rows(fmt: str, a: npt.NDArray) -> str:
    """All rows of ``a`` formatted with ``fmt`` in one join (no per-row Python formatting call)."""
    if not len(a):
        return ""
    return ((fmt + "\n") * len(a)) % tuple(a.ravel().tolist())


def write_obj(
    path: str | Path,
    vertices: npt.NDArray[np.floating],
    triangles: npt.NDArray[np.integer],
    colors: npt.NDArray[np.floating] | None = None,
    *,
    uv: npt.NDArray[np.floating] | None = None,
    texture: npt.NDArray[np.uint8] | None = None,
) -> Path:
    """Write a mesh as OBJ: ``v x y z [r g b]`` (colours in [0, 1]) and 1-based ``f`` lines.

    With ``uv`` and ``texture`` it also writes ``<stem>.mtl`` and ``<stem>.png`` next to the
    OBJ, ``vt`` lines and ``f a/a b/b c/c`` faces. The file appears atomically (written to
    ``<name>.partial`` then renamed).

    Args:
        path: output ``.obj`` path.
        vertices: ``[V, 3]`` positions (model units).
        triangles: ``[T, 3]`` 0-based vertex ids.
        colors: ``[V, 3]`` per-vertex RGB in [0, 1] (clipped).
        uv: ``[V, 2]`` texture coordinates in [0, 1], v up (OBJ convention).
        texture: ``[H, W, 3]`` uint8 RGB texture image.

    Returns:
        The OBJ path.

    Example:
        >>> import tempfile, os
        >>> tri = np.array([[0, 1, 2]])
        >>> p = write_obj(os.path.join(tempfile.mkdtemp(), "t.obj"), np.eye(3), tri)
        >>> [None if a is None else a.shape for a in read_obj(p)]
        [(3, 3), (1, 3), None]
    """
    path = Path(path)
    v = check_array(np.asarray(vertices), "vertices", (None, 3)).astype(np.float64)
    t = check_array(np.asarray(triangles), "triangles", (None, 3)).astype(np.int64) + 1
    if (uv is None) != (texture is None):
        raise InputError(f"{path}: write_obj needs both uv and texture, or neither")
    parts = ["# deocc mesh\n"]
    if uv is not None:
        parts.append(f"mtllib {path.stem}.mtl\nusemtl face\n")
    if colors is None:
        parts.append(_rows("v %.5f %.5f %.5f", v))
    else:
        c = np.clip(check_array(np.asarray(colors), "colors", (len(v), 3)).astype(np.float64), 0, 1)
        parts.append(_rows("v %.5f %.5f %.5f %.4f %.4f %.4f", np.concatenate([v, c], 1)))
    if uv is None:
        parts.append(_rows("f %d %d %d", t))
    else:
        parts.append(
            _rows("vt %.6f %.6f", check_array(np.asarray(uv), "uv", (len(v), 2)).astype(np.float64))
        )
        parts.append(_rows("f %d/%d %d/%d %d/%d", np.repeat(t, 2, axis=1)))
        tex = check_array(np.asarray(texture), "texture", (None, None, 3))
        cv2.imwrite(
            str(path.with_suffix(".png")), np.ascontiguousarray(tex[:, :, ::-1]).astype(np.uint8)
        )
        path.with_suffix(".mtl").write_text(
            f"newmtl face\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nmap_Kd {path.stem}.png\n"
        )
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text("".join(parts))
    tmp.replace(path)
    return path


def read_obj(
    path: str | Path,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32], npt.NDArray[np.float32] | None]:
    """Read an OBJ written by :func:`write_obj` (or any triangle OBJ).

    Args:
        path: ``.obj`` file.

    Returns:
        ``(vertices [V, 3] float32, triangles [T, 3] int32 0-based, colors [V, 3] float32 or
        None)``; colours only when every ``v`` line has 6 numbers.

    Raises:
        FormatError: a face that is not a triangle, or an unreadable number.

    Example:
        >>> import tempfile, os
        >>> tri, grey = np.array([[0, 1, 2]]), np.full((3, 3), 0.5)
        >>> p = write_obj(os.path.join(tempfile.mkdtemp(), "t.obj"), np.eye(3), tri, grey)
        >>> read_obj(p)[2].tolist()[0]
        [0.5, 0.5, 0.5]
    """
    verts, faces = [], []
    try:
        for line in Path(path).read_text().splitlines():
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "v":
                verts.append([float(x) for x in parts[1:]])
            elif parts[0] == "f":
                if len(parts) != 4:
                    raise FormatError(f"{path}: only triangle faces are supported, got {line!r}")
                faces.append([int(x.split("/")[0]) - 1 for x in parts[1:4]])
    except ValueError as e:
        raise FormatError(f"{path}: unreadable OBJ number ({e})") from None
    colors = None
    if verts and all(len(r) == 6 for r in verts):
        arr = np.array(verts, np.float32)
        v, colors = arr[:, :3], arr[:, 3:]
    else:
        v = np.array([r[:3] for r in verts], np.float32).reshape(-1, 3)
    return v, np.array(faces, np.int32).reshape(-1, 3), colors
