"""Which occluder families a test set holds, and which of them a model never trained on.

A family is where an occluder's pixels come from: ``deocc-3d:<class>`` (our 3D objects),
``deocc-2d:<class>`` (the flat procedural layers) or ``asset:<name>`` (one real cut-out of
``--occluder-assets``; MaskTheFace's ``_left`` / ``_right`` views are one family). Read from
the shard manifest's build configs and the checkpoint's training-data configs (its
``data_config``), so the held-out families are recorded, not asserted.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

from deocc_core.synth.manifest import build_configs

__all__ = ["occluder_families", "occluder_protocol"]

log = logging.getLogger(__name__)
ASSET_SHARE_DEFAULT = 0.3  # synth-occ build --asset-share's default (older builds: absent)


def occluder_families(configs: list[dict[str, Any]]) -> list[str]:
    """The occluder families a list of build configs can draw, sorted.

    Example:
        >>> occluder_families([{"occluders": ["mask", "cup"], "occluder_mode": "3d"}])
        ['deocc-3d:cup', 'deocc-3d:mask']
    """
    fams: set[str] = set()
    for c in configs:
        classes = list(c.get("occluders") or [])
        mode = c.get("occluder_mode", "3d")
        share = float(c.get("asset_share", ASSET_SHARE_DEFAULT))
        covered: set[str] = set()
        if c.get("occluder_assets") and share > 0:
            for name, cls in _asset_families(str(c["occluder_assets"])):
                if cls in classes:
                    fams.add(f"asset:{name}")
                    covered.add(cls)
        for cls in classes:
            if cls not in covered or share < 1.0 or mode == "2d":
                fams.add(f"deocc-{mode}:{cls}")
    return sorted(fams)


@lru_cache(maxsize=8)
def _asset_families(root: str) -> list[tuple[str, str]]:
    """(family, class name) of each pack in an assets folder; the folder itself when absent."""
    from deocc_core.errors import DeoccError
    from deocc_core.occluders.assets import load_asset_packs

    try:
        packs = load_asset_packs(root)
    except (DeoccError, OSError) as e:
        log.warning("%s: occluder assets not readable here (%s): families unknown", root, e)
        return [(root, cls) for cls in ("mask", "eyeglasses", "sunglasses")]
    out = set()
    for p in packs:
        name = p.name.removesuffix("_left").removesuffix("_right")
        out.add((name, p.occluder_class.name.lower()))
    return sorted(out)


def occluder_protocol(
    shard_config: dict[str, Any] | list[dict[str, Any]] | None, ckpt_info: dict[str, Any] | None
) -> dict[str, Any]:
    """The test set's occluder families, the first checkpoint's, and the held-out ones.

    Args:
        shard_config: the shard manifest's ``config`` (one build's, or a merged folder's list).
        ckpt_info: the first checkpoint's info (``resolve_generator``); its ``data_config`` is
            the training shards' manifest. None: no checkpoint.

    Returns:
        ``{"test_families", "train_families" (None: unknown), "held_out" (test families the
        checkpoint never saw; None: unknown), "occluder_assets", "asset_share"}``.
    """
    test_cfgs = build_configs(shard_config)
    test = occluder_families(test_cfgs)
    train = None
    data = (ckpt_info or {}).get("data_config")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = None
    if isinstance(data, dict) and data.get("config"):
        train = occluder_families(build_configs(data["config"]))
    return {
        "test_families": test,
        "train_families": train,
        "held_out": None if train is None else [f for f in test if f not in train],
        "occluder_assets": sorted({str(c.get("occluder_assets")) for c in test_cfgs}),
        "asset_share": sorted(
            {float(c.get("asset_share", ASSET_SHARE_DEFAULT)) for c in test_cfgs}
        ),
    }
