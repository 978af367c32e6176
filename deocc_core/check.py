"""One validation helper for arrays crossing a public boundary.

Validate once, at the entry point or loader; internals and kernels trust their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from deocc_core.errors import ShapeError

__all__ = ["check_array"]


def check_array(
    x: object,
    name: str,
    shape: Sequence[int | None],
    dtype: npt.DTypeLike | Sequence[npt.DTypeLike] | None = None,
    *,
    cast: npt.DTypeLike | None = None,
    contiguous: bool = False,
) -> np.ndarray:
    """Check an array's shape (and optionally dtype) and return it, optionally cast.

    Args:
        x: the value to check; must already be a numpy array.
        name: the argument name, used in the error message.
        shape: expected shape; ``None`` entries match any size.
        dtype: allowed dtype or dtypes; ``None`` accepts any.
        cast: if given, the array is returned converted to this dtype (no copy if equal).
        contiguous: if True the returned array is C-contiguous (copied if needed).

    Returns:
        The array, cast and made contiguous as asked.

    Raises:
        ShapeError: naming the argument, the expected shape or dtype, and the actual one.

    Example:
        >>> check_array(np.zeros((68, 2), np.float32), "landmarks", (68, 2), np.float32).shape
        (68, 2)
    """
    want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
    if not isinstance(x, np.ndarray):
        raise ShapeError(f"{name}: expected a numpy array of shape {want}, got {type(x).__name__}")
    if x.ndim != len(shape) or any(
        s is not None and s != d for s, d in zip(shape, x.shape, strict=True)
    ):
        raise ShapeError(f"{name}: expected shape {want}, got {list(x.shape)}")
    if dtype is not None:
        allowed = [np.dtype(d) for d in (dtype if isinstance(dtype, (list, tuple)) else [dtype])]
        if x.dtype not in allowed:
            names = " or ".join(str(d) for d in allowed)
            raise ShapeError(f"{name}: expected dtype {names}, got {x.dtype}")
    if cast is not None:
        x = x.astype(cast, copy=False)
    if contiguous:
        x = np.ascontiguousarray(x)
    return x
