"""Identity-disjoint splits by hashing: every face of an identity lands in the same split.

A hash (not a shuffle) keeps the assignment stable when a dataset grows and across
machines, so a multi-rank build and a later evaluation agree without sharing state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from deocc_core.errors import ConfigError, InputError

__all__ = [
    "assign_split",
    "SPLITS",
    "write_split_lists",
    "read_split_list",
    "choose_test_identities",
    "check_disjoint",
    "within_yaw",
    "MAX_YAW_DEG",
]

MAX_YAW_DEG = 60.0  # the paper's pose range: |yaw| <= 60 degrees

SPLITS = ("train", "test")


def assign_split(identity: str, salt: str = "deocc", test_fraction: float = 0.1) -> str:
    """``"test"`` for a stable pseudo-random ``test_fraction`` of identities, else ``"train"``.

    Example:
        >>> assign_split("person07") == assign_split("person07")
        True
        >>> sum(assign_split(f"id{i}") == "test" for i in range(1000)) in range(70, 130)
        True
    """
    return "test" if _unit_hash(identity, salt) < test_fraction else "train"


def _unit_hash(identity: str, salt: str) -> float:
    """sha256 of ``salt NUL identity`` as a number in [0, 1) (stable across runs/machines)."""
    h = hashlib.sha256(f"{salt}\0{identity}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def choose_test_identities(
    samples: Iterable[tuple[str, str]], n_test_samples: int, salt: str = "deocc"
) -> set[str]:
    """Pick test identities deterministically until they hold at least ``n_test_samples`` samples.

    Identities are taken in order of their salted hash (independent of input order), whole
    identities only, so the test set is ``n_test_samples`` rounded up to the next full
    identity (the paper's 2,000 test samples: ``n_test_samples=2000``).

    Args:
        samples: ``(key, identity)`` pairs.
        n_test_samples: wanted number of test samples.
        salt: hash salt; another salt gives another (still disjoint) choice.

    Returns:
        The set of test identities.

    Raises:
        ConfigError: fewer samples than requested, or every identity would be test.

    Example:
        >>> s = [(f"k{i}", f"id{i // 3}") for i in range(30)]
        >>> t = choose_test_identities(s, 7)
        >>> len(t), sum(i in t for _, i in s)
        (3, 9)
    """
    counts: dict[str, int] = {}
    for _, ident in samples:
        counts[ident] = counts.get(ident, 0) + 1
    total = sum(counts.values())
    if n_test_samples >= total:
        raise ConfigError(
            f"{n_test_samples} test samples requested but only {total} samples in all: "
            "nothing left to train on"
        )
    chosen: set[str] = set()
    got = 0
    for ident in sorted(counts, key=lambda i: (_unit_hash(i, salt), i)):
        if got >= n_test_samples:
            break
        chosen.add(ident)
        got += counts[ident]
    return chosen


def check_disjoint(
    train: Iterable[tuple[str, str]], test: Iterable[tuple[str, str]], where: str = "split lists"
) -> None:
    """Raise if an identity appears in both train and test.

    Args:
        train: ``(key, identity)`` pairs of the train split.
        test: ``(key, identity)`` pairs of the test split.
        where: named in the error (e.g. a file).

    Raises:
        InputError: naming up to 5 shared identities.

    Example:
        >>> check_disjoint([("a", "p1")], [("b", "p2")])
        >>> check_disjoint([("a", "p1")], [("b", "p1")])
        Traceback (most recent call last):
        ...
        deocc_core.errors.InputError: split lists: 1 identities in both train and test (p1)
    """
    both = sorted({i for _, i in train} & {i for _, i in test})
    if both:
        raise InputError(
            f"{where}: {len(both)} identities in both train and test ({', '.join(both[:5])})"
        )


def within_yaw(yaw_deg: float | None, max_yaw_deg: float = MAX_YAW_DEG) -> bool:
    """Pose filter: True when ``|yaw| <= max_yaw_deg`` (degrees); unknown yaw (None) passes.

    Example:
        >>> within_yaw(-45.0), within_yaw(75.0), within_yaw(None)
        (True, False, True)
    """
    return yaw_deg is None or abs(float(yaw_deg)) <= max_yaw_deg


def write_split_lists(
    prefix: Path,
    keys: Iterable[tuple[str, str]],
    salt: str = "deocc",
    test_fraction: float = 0.1,
    test_identities: set[str] | None = None,
) -> dict[str, Path]:
    """Write ``<prefix>.<split>.txt``.

    One ``key<TAB>identity`` line per input, sorted, then a ``# sha256 <hex>`` line over the lines
    above (so an edited list is detected).

    Args:
        prefix: output path prefix, e.g. ``data_manifests/aflw2000-3d``.
        keys: ``(source key, identity)`` pairs.
        salt: hash salt of :func:`assign_split`.
        test_fraction: share of identities in the test split (without ``test_identities``).
        test_identities: if given (e.g. from :func:`choose_test_identities`), exactly
            these identities are test; otherwise :func:`assign_split` decides.

    Raises:
        InputError: an identity would land in both lists (cannot happen by construction;
            checked anyway before anything is written).
    """
    rows: dict[str, list[str]] = {s: [] for s in SPLITS}
    pairs: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
    for key, ident in keys:
        split = (
            ("test" if ident in test_identities else "train")
            if test_identities is not None
            else assign_split(ident, salt, test_fraction)
        )
        rows[split].append(f"{key}\t{ident}")
        pairs[split].append((key, ident))
    check_disjoint(pairs["train"], pairs["test"], where=str(prefix))
    out = {}
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for split, lines in rows.items():
        body = "\n".join(sorted(lines)) + "\n"
        path = prefix.with_name(f"{prefix.name}.{split}.txt")
        path.write_text(body + f"# sha256 {hashlib.sha256(body.encode()).hexdigest()}\n")
        out[split] = path
    return out


def read_split_list(path: Path) -> list[tuple[str, str]]:
    """Read a list written by :func:`write_split_lists`.

    Raises:
        ValueError: its checksum does not match (the list was edited or truncated).
    """
    text = Path(path).read_text()
    body, _, tail = text.rpartition("# sha256 ")
    if hashlib.sha256(body.encode()).hexdigest() != tail.strip():
        raise ValueError(f"{path}: checksum mismatch (the list was edited or truncated)")
    return [tuple(line.split("\t", 1)) for line in body.splitlines() if line]
