"""Identity-disjoint hashed splits, exact-N test choice, checksummed lists, pose filter."""

from __future__ import annotations

import pytest

from deocc_core.errors import ConfigError, InputError
from deocc_core.synth.splits import assign_split, check_disjoint, choose_test_identities, within_yaw


def test_splits_are_identity_disjoint_and_stable():
    ids = [f"person{i}" for i in range(400)]
    split = {i: assign_split(i, test_fraction=0.2) for i in ids}
    assert split == {i: assign_split(i, test_fraction=0.2) for i in ids}
    assert 50 < sum(s == "test" for s in split.values()) < 110
    assert assign_split("x", salt="a") == assign_split("x", salt="a")


def test_split_lists_round_trip_and_detect_edits(tmp_path):
    from deocc_core.synth.splits import read_split_list, write_split_lists

    keys = [(f"img{i}.jpg", f"person{i % 7}") for i in range(40)]
    paths = write_split_lists(tmp_path / "ds", keys, test_fraction=0.3)
    train, test = read_split_list(paths["train"]), read_split_list(paths["test"])
    assert len(train) + len(test) == 40 and not {i for _, i in train} & {i for _, i in test}
    paths["test"].write_text(paths["test"].read_text().replace("person", "persom", 1))
    with pytest.raises(ValueError, match="checksum"):
        read_split_list(paths["test"])


def test_committed_split_lists_are_intact():
    from pathlib import Path

    from deocc_core.synth.splits import read_split_list

    lists = sorted((Path(__file__).resolve().parents[2] / "data_manifests").glob("*.txt"))
    assert lists and all(read_split_list(p) for p in lists)


def test_choose_test_identities_is_exact_stable_and_order_free():
    samples = [(f"img{i}", f"p{i // 5}") for i in range(10_000)]  # 2,000 identities x 5
    t = choose_test_identities(samples, 2000)
    assert len(t) == 400 and sum(i in t for _, i in samples) == 2000
    assert t == choose_test_identities(list(reversed(samples)), 2000)
    assert t != choose_test_identities(samples, 2000, salt="other")
    train = [s for s in samples if s[1] not in t]
    test = [s for s in samples if s[1] in t]
    check_disjoint(train, test)
    with pytest.raises(InputError, match="in both train and test"):
        check_disjoint(train + test[:1], test)
    with pytest.raises(ConfigError, match="nothing left"):
        choose_test_identities(samples[:10], 10)


def test_pose_filter_default_is_60_degrees():
    assert within_yaw(60.0) and within_yaw(-59.9) and not within_yaw(60.1) and within_yaw(None)
    assert not within_yaw(40.0, max_yaw_deg=30.0)


def test_split_lists_with_exactly_chosen_test_identities(tmp_path):
    from deocc_core.synth.splits import read_split_list, write_split_lists

    samples = [(f"img{i}.jpg", f"p{i // 4}") for i in range(200)]
    chosen = choose_test_identities(samples, 20)
    paths = write_split_lists(tmp_path / "ds", samples, test_identities=chosen)
    test = read_split_list(paths["test"])
    assert len(test) == 20 and {i for _, i in test} == chosen
    check_disjoint(read_split_list(paths["train"]), test)
