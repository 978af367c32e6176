"""Tampered, damaged and unverifiable models: refused in one line, or loaded with a warning.

Every ``.safetensors`` deocc writes carries a content hash that is checked on load; a file
without one is checked against the sha256 in its model card (the shipped default model);
with neither it loads with one warning. A NaN weight is refused.
"""

from __future__ import annotations

import json
import logging
import struct

import pytest
import torch

from deocc_core.errors import FormatError, InputError
from deocc_core.nets import packaged
from deocc_core.nets.packaged import (
    CONTENT_HASH_KEY,
    load_packaged_generator,
    read_safetensors,
    resolve_generator,
    write_safetensors,
)


@pytest.fixture(scope="module")
def shipped():
    """The shipped default model and its card (skip when the checkout has none)."""
    try:
        path = packaged.default_model_path()
    except InputError:
        pytest.skip("no default model in assets/")
    card = packaged.card_path(path)
    if not card.is_file():
        pytest.skip("the default model has no card beside it")
    return path, card


def _body_start(path) -> int:
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    return 8 + n


def _flip_high_byte(path, index: int = 1000) -> None:
    """Flip the high byte of fp16 value ``index`` of the tensor data (-0.03 → ~138)."""
    at = _body_start(path) + 2 * index + 1
    data = bytearray(path.read_bytes())
    data[at] ^= 0x58
    path.write_bytes(bytes(data))


def _strip_hash(src, dst) -> None:
    """``src`` rewritten without the content hash (a file some other tool wrote)."""
    raw = src.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header["__metadata__"].pop(CONTENT_HASH_KEY, None)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    dst.write_bytes(struct.pack("<Q", len(head)) + head + raw[8 + n :])


def test_the_shipped_model_is_verified_and_its_card_records_its_sha256(shipped):
    import hashlib

    model, card = shipped
    G, _, info = resolve_generator(None)
    assert info["verified"] in ("content hash", "model card")
    assert hashlib.sha256(model.read_bytes()).hexdigest() in card.read_text()


def _card_only_copy(shipped, folder):
    """The shipped model without its content hash, with a card recording the new sha256."""
    import hashlib

    model, card = shipped
    folder.mkdir(parents=True, exist_ok=True)
    m = folder / "m.safetensors"
    _strip_hash(model, m)
    old = hashlib.sha256(model.read_bytes()).hexdigest()
    new = hashlib.sha256(m.read_bytes()).hexdigest()
    (folder / "m.md").write_text(card.read_text().replace(old, new))
    return m


def test_a_model_without_a_content_hash_is_checked_against_its_card(shipped, tmp_path):
    m = _card_only_copy(shipped, tmp_path)
    assert load_packaged_generator(m)[2]["verified"] == "model card"
    _flip_high_byte(m)
    with pytest.raises(FormatError, match="model card m.md") as e:
        load_packaged_generator(m)
    assert str(m) in str(e.value) and "altered" in str(e.value)


def test_every_written_model_carries_a_content_hash_checked_on_load(shipped, tmp_path):
    tensors, meta = read_safetensors(shipped[0])
    m = write_safetensors(tmp_path / "hashed.safetensors", tensors, meta)  # no card beside it
    raw = m.read_bytes()
    assert CONTENT_HASH_KEY.encode() in raw[: _body_start(m)]
    _, _, info = load_packaged_generator(m)
    assert info["verified"] == "content hash"
    _flip_high_byte(m)
    with pytest.raises(FormatError, match="does not match its sha256"):
        read_safetensors(m)
    # metadata is covered too: a different training config is tampering as well
    m.write_bytes(raw.replace(b'\\"ngf\\": 24', b'\\"ngf\\": 25', 1))
    with pytest.raises(FormatError, match="does not match its sha256"):
        read_safetensors(m)


def test_a_nan_weight_is_refused(shipped, tmp_path):
    tensors, meta = read_safetensors(shipped[0])
    name = sorted(k for k, v in tensors.items() if v.is_floating_point())[3]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[7] = float("nan")
    m = write_safetensors(tmp_path / "nan.safetensors", tensors, meta)  # a valid hash
    with pytest.raises(FormatError, match=f"{name}.*NaN"):
        load_packaged_generator(m)


def test_a_model_of_unknown_origin_loads_with_one_warning(shipped, tmp_path, caplog):
    m = tmp_path / "foreign.safetensors"
    _strip_hash(shipped[0], m)
    with caplog.at_level(logging.WARNING, logger="deocc_core.nets.packaged"):
        G, _, info = load_packaged_generator(m)
    assert info["verified"] == ""
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "could not be verified" in warnings[0], warnings
    assert isinstance(G, torch.nn.Module)
