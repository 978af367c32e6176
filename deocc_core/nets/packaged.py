"""A generator packaged for users: safetensors weights (no pickle) + a model card.

``deocc-infer photo.jpg`` with no ``--ckpt`` runs the **default model** shipped in
``assets/`` (:data:`DEFAULT_MODEL` + :data:`DEFAULT_CARD`), found with
``importlib.resources`` (or beside the source tree in a checkout).

The file is plain `safetensors <https://github.com/huggingface/safetensors>`_: an 8-byte
little-endian header length, a JSON header (``dtype``, ``shape``, ``data_offsets`` per
tensor, and ``__metadata__`` of strings), then the raw little-endian tensor bytes. Reading
it parses JSON and copies bytes, nothing else, so a downloaded file cannot run code. The
reader and writer here are small and strict (dtype allow-list, offsets that tile the data
exactly); the files they write load with the ``safetensors`` library and vice versa.

``__metadata__["deocc"]`` (JSON) holds what inference needs: the training config (G's
shape: size, ngf, no_render, blend), G's input channels, the step and stage, the shards' 3DMM
(``data_model``: the face model G's renders come from) and build config (``data_config``:
inference fits faces as the build did). A given-mask G (``blend="given"``) also records the
occlusion segmenter whose m̂ it fills (``segmenter``: file name and sha256 of the shipped one
at export time).

Trust: every file :func:`write_safetensors` writes carries ``__metadata__["deocc_sha256"]``,
the sha256 of its tensors (names, dtypes, shapes, bytes) and other metadata, checked on
every read (a flipped bit is refused with one line). A file without one (written by older
deocc or another tool) is checked against the sha256 in its model card (``<stem>.md``
beside it; the shipped default model's card is :data:`DEFAULT_CARD`); with neither it
loads with a one-line warning that it could not be verified. A generator with a NaN or
infinite weight is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import struct
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deocc_core.errors import FormatError, InputError
from deocc_core.nets.checkpoint import find_checkpoint, load_checkpoint
from deocc_core.nets.io import GeneratorSpec, load_generator
from deocc_core.nets.networks import generator_in_channels

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_CARD",
    "PACKAGE_FORMAT",
    "SAFETENSORS_SUFFIX",
    "ExportResult",
    "read_safetensors",
    "read_verified",
    "write_safetensors",
    "export_generator",
    "load_packaged_generator",
    "default_model_path",
    "resolve_generator",
    "model_card",
    "RESEARCH_TERMS",
    "CONTENT_HASH_KEY",
    "content_sha256",
    "card_path",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default_model.safetensors"  # in assets/ (package deocc_assets)
DEFAULT_CARD = "default_model.md"
PACKAGE_FORMAT = "deocc-generator/1"  # __metadata__["format"]
SAFETENSORS_SUFFIX = ".safetensors"
_MAX_HEADER = 16 << 20  # bytes; a generator's header is a few kB
CONTENT_HASH_KEY = "deocc_sha256"  # __metadata__ key: sha256 of the content (content_sha256)
_CARD_SHA = re.compile(r"^\| file \|.*sha256 `([0-9a-f]{64})`", re.M)  # the card's file row

# safetensors dtype name ↔ torch dtype (the ones a generator's state can hold)
_DTYPES: dict[str, torch.dtype] = {
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}


def content_sha256(
    entries: dict[str, dict[str, Any]], metadata: dict[str, str], body: bytes | memoryview
) -> str:
    """sha256 of a safetensors file's content, independent of its header's layout.

    Args:
        entries: tensor name → ``{"dtype", "shape", "data_offsets"}`` (the header less
            ``__metadata__``).
        metadata: the ``__metadata__`` strings less :data:`CONTENT_HASH_KEY`.
        body: the tensor bytes after the header.

    Returns:
        64 hex digits: sha256 of the canonical JSON of ``entries`` and ``metadata``, a NUL,
        then ``body``.

    Example:
        >>> len(content_sha256({}, {"k": "v"}, b""))
        64
    """
    head = json.dumps([entries, metadata], sort_keys=True, separators=(",", ":")).encode()
    h = hashlib.sha256(head + b"\0")
    h.update(body)
    return h.hexdigest()


def write_safetensors(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> Path:
    """Write tensors and string metadata as a safetensors file (byte-deterministic).

    Tensors are stored in name order, contiguous, on the CPU; the header is padded with
    spaces to a multiple of 8 bytes; ``__metadata__`` gets :data:`CONTENT_HASH_KEY` (see
    :func:`content_sha256`). Written to a temp name and renamed.

    Raises:
        InputError: the file cannot be written (the path and the reason).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "t.safetensors"
        >>> _ = write_safetensors(p, {"w": torch.ones(2, 3)}, {"note": "hi"})
        >>> t, meta = read_safetensors(p)
        >>> t["w"].shape, meta
        (torch.Size([2, 3]), {'note': 'hi'})
    """
    path = Path(path)
    meta = {str(k): str(v) for k, v in metadata.items() if k != CONTENT_HASH_KEY}
    header: dict[str, Any] = {}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _NAMES:
            raise FormatError(f"{name}: dtype {t.dtype} cannot be stored")
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {
            "dtype": _NAMES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    meta[CONTENT_HASH_KEY] = content_sha256(header, meta, b"".join(blobs))
    header = {"__metadata__": meta, **header}
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(head)))
            f.write(head)
            for b in blobs:
                f.write(b)
        tmp.replace(path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise InputError(f"{path}: cannot write: {(e.strerror or str(e)).lower()}") from None
        raise
    return path


def _check_entry(path: Path, name: str, e: Any, size: int) -> tuple[int, int]:
    """``(start, end)`` of a header entry after checking dtype, shape and byte count."""
    if not isinstance(e, dict) or e.get("dtype") not in _DTYPES:
        raise FormatError(f"{path}: tensor {name!r}: unsupported or missing dtype")
    shape, off = e.get("shape"), e.get("data_offsets")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise FormatError(f"{path}: tensor {name!r}: bad shape {shape!r}")
    if not (isinstance(off, list) and len(off) == 2 and all(isinstance(o, int) for o in off)):
        raise FormatError(f"{path}: tensor {name!r}: bad data_offsets")
    start, end = off
    nbytes = math.prod(shape) * _DTYPES[e["dtype"]].itemsize
    if not (0 <= start <= end <= size) or end - start != nbytes:
        raise FormatError(f"{path}: tensor {name!r}: data_offsets do not match its shape")
    return start, end


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file: ``(tensors on the CPU, metadata)``.

    A file deocc wrote has its content hash checked (and left out of the metadata returned).

    Raises:
        InputError: missing file.
        FormatError: not a safetensors file (bad header, unsupported dtype, offsets that do
            not tile the data exactly), or content that does not match its hash.
    """
    tensors, meta, _ = _read_checked(path)
    return tensors, meta


def _read_checked(
    path: str | Path,
) -> tuple[dict[str, torch.Tensor], dict[str, str], bool]:
    """:func:`read_safetensors` + whether the file carried a content hash (and it matched)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    data = path.read_bytes()
    bad = f"{path}: not a safetensors file"
    if len(data) < 8:
        raise FormatError(f"{bad} (too short)")
    (n,) = struct.unpack("<Q", data[:8])
    if n < 2 or n > min(_MAX_HEADER, len(data) - 8):
        raise FormatError(f"{bad} (header length {n})")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FormatError(f"{bad} (header is not JSON)") from None
    if not isinstance(header, dict):
        raise FormatError(f"{bad} (header is not an object)")
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError(f"{bad} (metadata must map strings to strings)")
    body = memoryview(data)[8 + n :]
    spans = {name: _check_entry(path, name, e, len(body)) for name, e in header.items()}
    pos = 0
    for start, end in sorted(spans.values()):
        if start != pos:
            raise FormatError(f"{bad} (tensor data overlaps or leaves gaps)")
        pos = end
    if pos != len(body):
        raise FormatError(f"{bad} ({len(body) - pos} trailing bytes)")
    stored = meta.pop(CONTENT_HASH_KEY, None)
    if stored is not None and stored != content_sha256(header, meta, body):
        raise FormatError(
            f"{path}: content does not match its sha256 (the file was damaged or altered); "
            "export or download it again"
        )
    tensors = {}
    for name, (start, end) in spans.items():
        e = header[name]
        buf = bytearray(body[start:end])
        dtype = _DTYPES[e["dtype"]]
        t = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(e["shape"])
    return tensors, dict(meta), stored is not None


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_generator` wrote.

    Attributes:
        path: the safetensors file. sha256: its content hash. n_params: G's parameters.
        bytes: file size. source: the checkpoint file read. info: the ``deocc`` metadata.
        dtype: ``float16`` or ``float32`` (the floating-point tensors).
    """

    path: Path
    sha256: str
    n_params: int
    bytes: int
    source: Path
    info: dict[str, Any]
    dtype: str


def export_generator(src: str | Path, dst: str | Path, *, half: bool = True) -> ExportResult:
    """Package G of a checkpoint (file or run folder) as safetensors; deterministic.

    Args:
        src: checkpoint file or run folder (``best.pt``, else ``latest.pt``).
        dst: the ``.safetensors`` file to write.
        half: store floating-point tensors as float16 (half the size; outputs change by
            about one grey level). Integer buffers are kept.

    Raises:
        InputError: no checkpoint there, or ``dst`` cannot be written.
        FormatError: unreadable checkpoint, or weights that do not match its config.
    """
    src_file = find_checkpoint(src)
    state = load_checkpoint(src_file, "cpu")
    spec = GeneratorSpec.from_config(state["config"])
    G = spec.build()
    try:
        G.load_state_dict(state["G"])
    except RuntimeError as e:
        raise FormatError(f"{src_file}: generator weights do not match its config ({e})") from None
    tensors = {
        k: (v.half() if half and v.is_floating_point() else v) for k, v in G.state_dict().items()
    }
    info = {
        "config": state["config"],
        "in_channels": generator_in_channels(spec.no_render, spec.blend),
        "step": state["step"],
        "stage": state["stage"],
        "data_model": state.get("data_model", {}),
        "data_config": state.get("data_config", {}),
        "package_version": state.get("package_version"),
    }
    if spec.blend == "given":
        info["segmenter"] = _shipped_segmenter()
    meta = {"format": PACKAGE_FORMAT, "deocc": json.dumps(info, sort_keys=True)}
    path = write_safetensors(dst, tensors, meta)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    n_params = sum(p.numel() for p in G.parameters())
    dtype = "float16" if half else "float32"
    return ExportResult(path, digest, n_params, path.stat().st_size, src_file, info, dtype)


def _shipped_segmenter() -> dict[str, str]:
    """The shipped occlusion segmenter's file name and sha256 (empty when none is shipped)."""
    from deocc_core.nets.segmenter import default_segmenter_path

    try:
        p = default_segmenter_path()
    except InputError:
        return {}
    return {"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}


def load_packaged_generator(
    path: str | Path, device: str | torch.device = "cpu", *, given_g: bool = True
) -> tuple[nn.Module | None, GeneratorSpec, dict[str, Any]]:
    """Generator in eval mode (float32) from a packaged ``.safetensors`` file.

    The file is verified first (see the module docstring): its content hash, else the
    sha256 in its model card; with neither, one warning says it could not be verified.

    Args:
        path: the file.
        device: where G goes.
        given_g: False: a given-mask G (``blend="given"``) is not built (``None``; its
            weights not read into a module nor checked for NaN), for a caller whose fill
            never runs it; its metadata is still verified, the card and info need it.

    Returns:
        ``(G, spec, info)`` like :func:`deocc_core.nets.io.load_generator` (``step``,
        ``stage``, ``data_model``, ``data_config``, ``path``, ``config``, and ``verified``:
        ``"content hash"``, ``"model card"`` or ``""``; a given-mask G's ``segmenter``).

    Raises:
        InputError: missing file. FormatError: not a safetensors file, not a deocc
            generator, damaged or altered (content hash or model card mismatch), a NaN or
            infinite weight, or weights that do not match the recorded config.
    """
    path = Path(path)
    tensors, meta, verified = _read_trusted(path)
    if meta.get("format") != PACKAGE_FORMAT:
        raise FormatError(
            f"{path}: not a deocc generator (format {meta.get('format')!r}, "
            f"expected {PACKAGE_FORMAT!r})"
        )
    try:
        info = json.loads(meta["deocc"])
        spec = GeneratorSpec.from_config(info["config"])
    except (KeyError, ValueError, TypeError):
        raise FormatError(f"{path}: deocc metadata missing or unreadable") from None
    channels = generator_in_channels(spec.no_render, spec.blend)
    if info.get("in_channels", channels) != channels:
        raise FormatError(
            f"{path}: records {info['in_channels']} input channels, blend {spec.blend!r} "
            f"takes {channels}"
        )
    out = {k: info.get(k, {}) for k in ("data_model", "data_config")}
    out.update(step=info.get("step"), stage=info.get("stage"), path=str(path))
    out["config"] = info["config"]
    out["verified"] = verified
    if spec.blend == "given":
        out["segmenter"] = info.get("segmenter", {})
        if not given_g:  # building G is most of the load (~60 of ~80 ms, default model)
            return None, spec, out
    _check_finite(path, tensors)
    G = spec.build()
    ref = G.state_dict()
    state = {k: v.to(ref[k].dtype) if k in ref else v for k, v in tensors.items()}
    try:
        G.load_state_dict(state)
    except RuntimeError as e:
        msg = str(e).splitlines()[0][:100]
        raise FormatError(f"{path}: weights do not match the recorded config ({msg})") from None
    return G.to(device).eval(), spec, out


def read_verified(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str], str]:
    """:func:`read_safetensors` for a model about to be used: verified and finite.

    Returns:
        ``(tensors, metadata, verified)`` with ``verified`` ``"content hash"``, ``"model
        card"`` or ``""`` (no hash, no card: one warning says it could not be verified).

    Raises:
        InputError: missing file. FormatError: not a safetensors file, damaged or altered
            (content hash or model card mismatch), a NaN or infinite weight.
    """
    tensors, meta, verified = _read_trusted(path)
    _check_finite(Path(path), tensors)
    return tensors, meta, verified


def _read_trusted(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str], str]:
    """:func:`read_safetensors` verified by its content hash, else its card (not for NaN)."""
    path = Path(path)
    tensors, meta, hashed = _read_checked(path)
    return tensors, meta, "content hash" if hashed else _check_card(path)


def _check_finite(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse a NaN or infinite weight (FormatError naming it)."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise FormatError(f"{path}: weight {name!r} holds NaN or infinite values")


def card_path(model: str | Path) -> Path:
    """The model card beside a packaged model: ``<stem>.md``."""
    return Path(model).with_suffix(".md")


def _check_card(path: Path) -> str:
    """Check a file without a content hash against its card's sha256.

    Returns:
        ``"model card"`` when it matches, ``""`` (after one warning) when there is no card
        or the card records no sha256.

    Raises:
        FormatError: the file's sha256 is not the one its card records.
    """
    card = card_path(path)
    try:
        found = _CARD_SHA.search(card.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        found = None
    if found is None:
        log.warning(
            "%s: could not be verified (no content hash and no model card %s with its "
            "sha256): use it only if you trust where it came from",
            path,
            card.name,
        )
        return ""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != found.group(1):
        raise FormatError(
            f"{path}: sha256 {digest[:16]}… is not the {found.group(1)[:16]}… its model card "
            f"{card.name} records (the file was damaged or altered)"
        )
    return "model card"


def default_model_path() -> Path:
    """The shipped default model: ``assets/default_model.safetensors``.

    Looks beside the source tree first (a checkout), then in the installed ``deocc_assets``
    package (a wheel).

    Raises:
        InputError: the file is in neither place (one line: where to put it).
    """
    local = Path(__file__).resolve().parents[2] / "assets" / DEFAULT_MODEL
    if local.is_file():
        return local
    try:
        packaged = Path(str(files("deocc_assets") / DEFAULT_MODEL))
    except ModuleNotFoundError:
        packaged = None
    if packaged is not None and packaged.is_file():
        return packaged
    where = local.parent if packaged is None or local.parent.is_dir() else packaged.parent
    raise InputError(
        f"no default model: put {DEFAULT_MODEL} (+ {DEFAULT_CARD}) in {where} "
        "(tools/export_default_model.py RUN makes them) or pass --ckpt"
    )


def resolve_generator(
    ckpt: str | Path | None, device: str | torch.device = "cpu", *, given_g: bool = True
) -> tuple[nn.Module | None, GeneratorSpec, dict[str, Any]]:
    """The generator a user asked for.

    ``ckpt``: None → the default model; a ``.safetensors`` file → that packaged model; else
    a checkpoint file or run folder. ``given_g``: see :func:`load_packaged_generator` (a
    checkpoint's G is always loaded: its spec comes with its weights).

    Returns:
        ``(G, spec, info)``; ``info["label"]`` says which model it is (for the CLI).

    Raises:
        InputError: nothing there (for None: where the default model belongs).
        FormatError: unreadable file.
    """
    if ckpt is None:
        G, spec, info = load_packaged_generator(default_model_path(), device, given_g=given_g)
        info["label"] = f"default model ({info['path']})"
    elif Path(ckpt).suffix == SAFETENSORS_SUFFIX:
        G, spec, info = load_packaged_generator(ckpt, device, given_g=given_g)
        info["label"] = f"{info['path']} (packaged)"
    else:
        G, spec, info = load_generator(ckpt, device)
        info["label"] = f"{info['path']} (step {info['step']})"
    return G, spec, info


RESEARCH_TERMS = (
    "Research use only. The training photos are third-party images under research-only "
    "terms (see the data section); the weights inherit those terms. The code is MIT."
)


def _score_table(scores: dict[str, Any]) -> list[str]:
    """Markdown rows ``method | whole crop | inside the occluder | n`` of a deocc-eval table."""
    lines = [
        "| method | whole crop PSNR / SSIM | inside the occluder PSNR / SSIM | n |",
        "|---|---|---|---|",
    ]
    for method, groups in scores.get("table", {}).items():
        a = groups.get("all", {})
        lines.append(
            f"| {method} | {a.get('psnr', float('nan')):.2f} / {a.get('ssim', float('nan')):.4f}"
            f" | {a.get('psnr_mask', float('nan')):.2f} / {a.get('ssim_mask', float('nan')):.4f}"
            f" | {a.get('n', '')} |"
        )
    return lines


def _input_text(no_render: bool, blend: str) -> str:
    """What G reads, in words (the card's generator row)."""
    n = generator_in_channels(no_render, blend)
    if blend == "given":
        parts = "prefill" + ("" if no_render else " + 3DMM render") + " + mask"
        return f"input {parts} ({n} channels)"
    return "no render channel" if no_render else f"occluded + 3DMM render input ({n} channels)"


def _mask_rows(blend: str, segmenter: dict[str, str]) -> list[str]:
    """A given-mask G's card rows: where its mask comes from and what fills it first."""
    if blend != "given":
        return []
    seg = (
        f"`{segmenter['name']}` (sha256 `{segmenter['sha256'][:16]}`)"
        if segmenter.get("sha256")
        else "an occlusion segmenter (none was shipped at export)"
    )
    return [
        f"| mask | given, not predicted: the occlusion segmenter's m̂ ({seg}; deocc-infer "
        "--segmenter auto / default) or the user's --mask; with --segmenter none and no "
        "--mask it refuses to run |",
        "| prefill | the mask filled by the completed render of the face G was prepared with "
        "(colour-matched to the skin around it; Telea beyond the render's silhouette); G adds "
        "a residual there (--fill g); --fill render gives the prefill alone, which is what "
        "deocc-infer's --fill auto uses when this file is the shipped default model |",
    ]


def model_card(
    result: ExportResult,
    *,
    scores: dict[str, Any] | None = None,
    commands: tuple[str, ...] = (),
    data_note: str = "",
    terms: str = RESEARCH_TERMS,
    splits: dict[str, Any] | None = None,
) -> str:
    """The markdown model card of an exported generator (deterministic: no dates, no hosts).

    Args:
        result: what :func:`export_generator` wrote.
        scores: a ``deocc-eval`` ``results.json`` (its ``table`` and ``config``), or None.
        commands: the commands that made the model (build, train, eval, export).
        data_note: what the training data is, in words (sources and their terms).
        terms: the model's terms of use.
        splits: the shards' ``manifest.json`` ``splits`` (sample and identity counts), or None.

    Returns:
        Markdown text.
    """
    cfg, info = result.info["config"], result.info
    build = (info.get("data_config") or {}).get("config") or {}
    builds = [build] if isinstance(build, dict) else list(build)  # a merged folder: a list
    dm = info.get("data_model") or {}
    blend = cfg.get("blend", "none")
    lines = [
        "# deocc default de-occlusion model",
        "",
        "| | |",
        "|---|---|",
        f"| file | `{result.path.name}`: {result.bytes:,} bytes, sha256 `{result.sha256}` |",
        f"| format | safetensors ({PACKAGE_FORMAT}; {result.dtype} weights, no pickle) |",
        f"| generator | U-Net, {cfg['size']} px crops, ngf {cfg['ngf']}, blend `{blend}`, "
        f"{_input_text(bool(cfg.get('no_render')), blend)}, {result.n_params:,} parameters |",
        *_mask_rows(blend, info.get("segmenter") or {}),
        f"| training | {info['step']} steps, stage {info['stage']}, batch {cfg.get('batch_size')}, "
        f"seed {cfg.get('seed')}, deocc {info.get('package_version')} |",
        f"| 3DMM | {dm.get('name', 'unknown')} (sha256 `{str(dm.get('sha256', ''))[:16]}`) |",
        f"| terms | {terms} |",
        "",
        "## Data",
        "",
    ]
    if data_note:
        lines += [data_note, ""]
    keys = ("source", "root", "size", "per_face", "occluders", "n_synthetic", "seed")
    for b in builds:
        shown = {k: b[k] for k in keys if b.get(k) not in (None, "", [])}
        lines.append("Shard build config: " + ", ".join(f"{k} `{v}`" for k, v in shown.items()))
        lines.append("")
    if splits:
        for name, s in sorted(splits.items()):
            lines.append(
                f"- split `{name}`: {s.get('samples', '?')} samples, "
                f"{s.get('identities', '?')} identities"
            )
        lines.append("")
    lines += ["## Scores", ""]
    if scores:
        ec = scores.get("config", {})
        lines.append(
            f"`deocc-eval` on split `{ec.get('split', '?')}` of `{ec.get('shards', '?')}`, "
            f"{scores.get('n_samples', '?')} samples (identities disjoint from training). "
            "`<name>` is what deocc-infer writes (pasted back where the model's mask says), "
            "`<name>:raw` G's raw output; `telea` / `ns` are OpenCV inpainting given the true "
            "mask (an oracle); `render` is the mask filled by the colour-matched render (a "
            "given-mask G's prefill); `@true` rows fill the true object mask; `input` is the "
            "occluded crop."
        )
        lines += ["", *_score_table(scores), ""]
    else:
        lines += ["Not evaluated.", ""]
    lines += ["## How it was made", "", "```"]
    lines += list(commands) or ["(not recorded)"]
    lines += ["```", ""]
    return "\n".join(lines)
