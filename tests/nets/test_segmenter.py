"""The occlusion segmenter net: shapes, packaging round trip, errors, the shipped file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deocc_core.errors import FormatError, InputError
from deocc_core.nets.packaged import write_safetensors
from deocc_core.nets.segmenter import (
    Segmenter,
    SegmenterSpec,
    default_segmenter_path,
    load_segmenter,
    run_segmenter,
    save_segmenter,
)


@pytest.mark.parametrize("size", [32, 64])
def test_one_logit_per_pixel_at_any_multiple_of_32(size):
    net = Segmenter(SegmenterSpec(widths=(8, 8, 16, 16, 16), refine=4)).eval()
    x = torch.zeros(2, 3, size, size)
    assert net(x).shape == (2, 1, size, size)
    p = run_segmenter(net, np.zeros((size, size, 3), np.uint8))
    assert p.shape == (size, size) and p.dtype == np.float32 and 0 <= p.min() <= p.max() <= 1


def test_crops_of_other_sides_or_dtypes_are_refused():
    net = Segmenter().eval()
    with pytest.raises(ValueError, match="multiple of 32"):
        run_segmenter(net, np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        run_segmenter(net, np.zeros((32, 32, 3), np.float32))


def test_fp16_file_round_trip_keeps_the_masks(tmp_path):
    torch.manual_seed(0)
    net = Segmenter(SegmenterSpec(widths=(8, 8, 16, 16, 16), refine=4)).eval()
    path = save_segmenter(net, tmp_path / "s.safetensors", {"step": "7"})
    back, meta = load_segmenter(path)
    assert back.spec == net.spec and meta["step"] == "7"
    x = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert np.abs(run_segmenter(back, x) - run_segmenter(net, x)).max() < 1e-2


def test_a_file_that_is_not_a_segmenter_is_a_format_error(tmp_path):
    p = write_safetensors(tmp_path / "g.safetensors", {"w": torch.ones(2)}, {"format": "x"})
    with pytest.raises(FormatError, match="not a segmenter"):
        load_segmenter(p)
    with pytest.raises(InputError, match="not found"):
        load_segmenter(tmp_path / "missing.safetensors")


def test_the_shipped_segmenter_loads_small_and_in_fp16():
    path = default_segmenter_path()
    assert path.stat().st_size < 5_000_000
    net, meta = load_segmenter(path)
    assert int(meta["step"]) > 0 and net.spec.size == 128


def test_a_damaged_or_nan_segmenter_is_refused(tmp_path):
    src = default_segmenter_path().read_bytes()
    bad = bytearray(src)
    bad[-3] ^= 0x40  # one fp16 weight's high byte in the shipped file
    (tmp_path / "flip.safetensors").write_bytes(bytes(bad))
    with pytest.raises(FormatError, match="does not match"):
        load_segmenter(tmp_path / "flip.safetensors")
    net = Segmenter(SegmenterSpec(widths=(8, 8, 16, 16, 16), refine=4))
    with torch.no_grad():
        next(net.parameters())[0] = float("nan")
    path = save_segmenter(net, tmp_path / "nan.safetensors")
    with pytest.raises(FormatError, match="NaN"):
        load_segmenter(path)
