"""deocc_core: face de-occlusion with a 3D morphable model prior and a GAN.

The library computes; the console scripts in ``tools/`` parse options and report.
Data flows one way: morphable → render → landmarks → occluders → synth → data →
nets/train → infer/eval.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("deocc")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
