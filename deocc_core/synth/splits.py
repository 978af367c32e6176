"""Identity-disjoint splits by hashing: every face of an identity lands in the same split.

A hash (not a shuffle) keeps the assignment stable when a dataset grows and across
machines, so a multi-rank build and a later evaluation agree without sharing state.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

__all__ = ["assign_split", "SPLITS", "write_split_lists", "read_split_list"]

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


def write_split_lists(prefix: Path, keys: Iterable[tuple[str, str]], salt: str = "deocc", test_fraction: float = 0.1) -> dict[str, Path]:
    """Write ``<prefix>.<split>.txt``: one ``key<TAB>identity`` line per input, sorted, then a
    ``# sha256 <hex>`` line over the lines above (so an edited list is detected).

    Args:
        prefix: output path prefix, e.g. ``data_manifests/aflw2000-3d``.
        keys: ``(source key, identity)`` pairs.
    """
    rows: dict[str, list[str]] = {s: [] for s in SPLITS}
    for key, ident in keys:
        rows[assign_split(ident, salt, test_fraction)].append(f"{key}\t{ident}")
    out = {}
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for split, lines in rows.items():
        body = "\n".join(sorted(lines)) + "\n"
        path = prefix.with_name(f"{prefix.name}.{split}.txt")
        path.write_text(body + f"# sha256 {hashlib.sha256(body.encode()).hexdigest()}\n")
        out[split] = path
    return out


def read_split_list(path: Path) -> list[tuple[str, str]]:
    """Read a list written by :func:`write_split_lists`; ValueError if its checksum does not match."""
    text = Path(path).read_text()
    body, _, tail = text.rpartition("# sha256 ")
    if hashlib.sha256(body.encode()).hexdigest() != tail.strip():
        raise ValueError(f"{path}: checksum mismatch (the list was edited or truncated)")
    return [tuple(line.split("\t", 1)) for line in body.splitlines() if line]
