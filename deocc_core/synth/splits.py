"""Identity-disjoint splits by hashing: every face of an identity lands in the same split.

A hash (not a shuffle) keeps the assignment stable when a dataset grows and across
machines, so a multi-rank build and a later evaluation agree without sharing state.
"""
from __future__ import annotations

import hashlib

__all__ = ["assign_split", "SPLITS"]

SPLITS = ("train", "test")


def assign_split(identity: str, salt: str = "deocc", test_fraction: float = 0.1) -> str:
    """``"test"`` for a stable pseudo-random ``test_fraction`` of identities, else ``"train"``.

    Example:
        >>> assign_split("person07") == assign_split("person07")
        True
        >>> sum(assign_split(f"id{i}") == "test" for i in range(1000)) in range(70, 130)
        True
    """
    h = hashlib.sha256(f"{salt}\0{identity}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    return "test" if u < test_fraction else "train"
