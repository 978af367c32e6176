"""Helpers shared by the trainer tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch


def _assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two checkpoints hold the same networks, optimizers and RNG states, bit for bit."""
    for net in ("G", "Dg", "Dl"):
        assert all(torch.equal(v, b[net][k]) for k, v in a[net].items()), net
        sa, sb = a[f"opt_{net}"]["state"], b[f"opt_{net}"]["state"]
        assert sa.keys() == sb.keys()
        assert all(
            torch.equal(sa[i][k], sb[i][k]) for i in sa for k in ("exp_avg", "exp_avg_sq", "step")
        ), net
    assert a["rng"].keys() == b["rng"].keys()
    for r in a["rng"]:
        assert torch.equal(a["rng"][r]["torch"], b["rng"][r]["torch"])
        assert torch.equal(a["rng"][r]["numpy"]["keys"], b["rng"][r]["numpy"]["keys"])
        assert torch.equal(a["rng"][r]["python"]["state"], b["rng"][r]["python"]["state"])


@pytest.fixture
def same_state() -> Callable[[dict[str, Any], dict[str, Any]], None]:
    """``same_state(a, b)`` asserts two checkpoint states are bit-identical."""
    return _assert_same_state
