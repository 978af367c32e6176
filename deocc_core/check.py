"""One validation helper for arrays crossing a public boundary.

Validate once, at the entry point or loader; internals and kernels trust their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from deocc_core.errors import ConfigError, ShapeError

__all__ = ["check_array", "CROP_SIZES", "crop_size_problem", "check_crop_size"]

# crop sides the whole pipeline handles: the U-Net halves a power of two down to 1 px, and
# beyond 1024 px a shard sample no longer fits a sensible chunk (the paper: 256)
CROP_SIZES = (32, 64, 128, 256, 512, 1024)


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


def crop_size_problem(size: object) -> str | None:
    """Why ``size`` cannot be a crop side (None if it can): the one rule for every ``--size``.

    Example:
        >>> crop_size_problem(256) is None, crop_size_problem(96)
        (True, 'must be a power of two from 32 to 1024 (32, 64, 128, 256, 512, 1024), got 96')
    """
    if isinstance(size, int) and not isinstance(size, bool) and size in CROP_SIZES:
        return None
    sizes = ", ".join(map(str, CROP_SIZES))
    return f"must be a power of two from {CROP_SIZES[0]} to {CROP_SIZES[-1]} ({sizes}), got {size}"


def check_crop_size(size: object, name: str = "--size") -> int:
    """``size`` if it is a valid crop side, else a ConfigError naming the option.

    Example:
        >>> check_crop_size(33)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        deocc_core.errors.ConfigError: --size must be a power of two from 32 to 1024 (...), got 33
    """
    problem = crop_size_problem(size)
    if problem:
        raise ConfigError(f"{name} {problem}")
    return size  # type: ignore[return-value]
