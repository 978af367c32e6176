"""Batch inference over photos and folders: the library side of ``deocc-infer``.

Reads each image, finds its faces (detector or ``.pts`` / ``.mat`` sidecar), de-occludes
them (:func:`deocc_core.infer.pipeline.deocclude`) and writes, per image, the de-occluded
photo and the paste-back weight (``_mask.png``), optionally a side-by-side, and per face
the aligned crop, its render, the output crop, the model's occlusion mask m̂ and optionally
the coloured mesh.

Output names keep each image's path relative to the folder it was found in (``a/face.jpg``
→ ``<out>/a/face_deoccluded.png``), so equal file names never overwrite each other.
Images that yield nothing (unreadable, too small, no face, missing sidecar) are reported
in :class:`InferResult` and the run goes on. A failed write (disk full, permission denied)
stops the run: the image's partial outputs are removed and :attr:`InferResult.error` names
the path; nothing unwritten is counted.

A folder run overlaps the I/O with the face work (:class:`_PhotoIO`): the next photo is
decoded and the outputs of up to :data:`IO_DEPTH` earlier photos are written, each in its
own thread (OpenCV's decode and PNG encode release the GIL), while one photo is processed.
Photos are counted in their order, so the result, the files and their bytes are those of a
photo-by-photo run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from deocc_core.device import DEVICES, resolve_device
from deocc_core.errors import STOPS, ConfigError, InputError, Interrupted, SkipInput
from deocc_core.face.prepare import FaceInputConfig
from deocc_core.fileio import FolderLock, output_names
from deocc_core.imageio import IMAGE_SUFFIXES, read_image, write_image
from deocc_core.infer.fill import FILLS
from deocc_core.infer.grid import face_sheet
from deocc_core.infer.pipeline import (
    MIN_FACE_PX,
    FaceOutput,
    PhotoOutput,
    check_fill,
    check_given,
    deocclude,
    expression_coefficients,
)
from deocc_core.infer.usermask import find_user_mask, read_user_mask
from deocc_core.landmarks.detect import DEFAULT_BACKEND, DETECTORS, LandmarkDetector
from deocc_core.landmarks.find import LANDMARK_SOURCES, LazyDetector, landmarks_for
from deocc_core.morphable.fit import FitConfig
from deocc_core.morphable.model import MorphableModel, load_model
from deocc_core.nets.io import GeneratorSpec, prepare_generator
from deocc_core.nets.packaged import resolve_generator
from deocc_core.nets.segmenter import (
    SEGMENTER_HELP,
    default_segmenter_path,
    is_shipped_model,
    resolve_segmenter,
)
from deocc_core.options import option
from deocc_core.recon.export import MeshConfig, write_face_meshes
from deocc_core.synth.manifest import build_configs

__all__ = [
    "InferConfig",
    "InferResult",
    "list_images",
    "load_run",
    "LoadedRun",
    "resolve_fill",
    "plan_outputs",
    "run_inference",
    "LANDMARK_SOURCES",
    "GRID_NAME",
]

log = logging.getLogger(__name__)
_MESH = {f.name: f for f in fields(MeshConfig)}  # mesh options, declared once in recon
GRID_NAME = "grid.png"  # the --grid sheet, in the output folder
LOCK_NAME = ".lock"  # held in --out while a run writes there (as build and train do)
# photos whose outputs may wait for the writer while the next is processed: bounds memory
# (a 12 MP photo's outputs hold ~130 MB) yet absorbs a slow write behind a fast photo
IO_DEPTH = 2
# the names run_inference writes (see _write_photo / _write_face): never read back as photos
_OUTPUT_STEM = re.compile(r"(_deoccluded|_mask|_side_by_side|_face\d+(_[a-z_]+)?)$|^grid$")


@dataclass(frozen=True)
class InferConfig:
    """What ``deocc-infer`` runs (each field's help is its ``option`` metadata)."""

    inputs: tuple[str, ...] = option(
        help="Images and/or folders of images (searched recursively; *_gt images skipped)."
    )
    ckpt: str | None = option(
        None,
        "Checkpoint file, run folder (best.pt, else latest.pt) or packaged .safetensors.",
        path="any",
        default_help="the shipped default model, assets/default_model.safetensors",
    )
    segmenter: str = option("auto", SEGMENTER_HELP)
    fill: str = option(
        "auto",
        "What fills m̂: g (G's output), render (the completed deocc-face render, colour-matched "
        "to the skin around the mask; G outside the face), or auto (render with the shipped "
        "model, g with another --ckpt or an --expression edit). A given-mask generator (blend "
        "given, the shipped v2 model) refines that render fill with g; render gives the fill "
        "alone, without G.",
        choices=("auto", *FILLS),
    )
    out: str = option("infer_out", "Output folder.", path="out")
    model: str | None = option(
        None,
        "3DMM the shards were built with: starter, deocc-face or a model path.",
        default_help="the checkpoint's model (starter or deocc-face)",
    )
    landmarks_from: str = option(
        "detector",
        "Where the landmarks come from (pts / mat: the sidecar beside each image; auto: the "
        "sidecar if any, else the detector).",
        choices=LANDMARK_SOURCES,
    )
    backend: str = option(
        DEFAULT_BACKEND,
        "Landmark backend (fan needs deocc[fan] + local weights).",
        choices=tuple(DETECTORS),
    )
    mesh: bool = option(
        False,
        "Also write each fitted mesh textured by the de-occluded face (OBJ, + MTL and PNG "
        "texture for models with texture coordinates) and its picture (*_view.png).",
    )
    detail: bool = field(default=False, metadata=_MESH["detail"].metadata)
    compare_occluded: bool = field(default=False, metadata=_MESH["compare_occluded"].metadata)
    uv: str | None = field(default=None, metadata=_MESH["uv"].metadata)
    expression: str = option(
        "keep",
        "Expression edit: keep | neutral | smile | open | surprise | FILE.json ({mode: std "
        "units} or a list of n_exp std units). Refused for a given-mask generator (it redraws "
        "only the occluded pixels).",
    )
    mask: str | None = option(
        None,
        "The occluded pixels, given: a mask image (white = occluded) of the photo's size, or a "
        "folder of masks matched by name (face.jpg: face.png or face_mask.png). G fills them; "
        "every other pixel stays bit-identical; a photo without its mask is skipped.",
        path="any",
        default_help="none: where the model's occlusion mask says",
    )
    side_by_side: bool = option(False, "Also write input | output side by side.")
    grid: int = option(
        0,
        "Also write grid.png: input crop | occlusion mask | output for the first N faces (0: off).",
        units="faces",
        min=0,
    )
    device: str = option("auto", "Where G runs.", choices=DEVICES)
    strict: bool = option(False, "Exit 1 when any image or face was skipped.")


@dataclass(frozen=True)
class InferResult:
    """What a run did.

    Attributes:
        n_images: images found. n_written: photos whose outputs were all written.
        n_faces: faces de-occluded (in written photos only).
        problems: one line per skipped image or face.
        outputs: the de-occluded photos written.
        model: which generator ran (its label: the default model, a file, a run).
        error: the write failure that stopped the run (path and reason), else None.
        grid: the ``--grid`` sheet written, else None.
    """

    n_images: int
    n_written: int
    n_faces: int
    problems: tuple[str, ...]
    outputs: tuple[Path, ...]
    model: str = ""
    error: str | None = None
    grid: Path | None = None


class _WriteFailed(InputError):
    """An output could not be written (the message names the path and the reason)."""


def list_images(inputs: tuple[str, ...] | list[str]) -> list[Path]:
    """Image files named in ``inputs`` plus those found (recursively, sorted) in its folders.

    Raises:
        InputError: an input that is neither a file nor a folder.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> for name in ("a.png", "a_gt.png", "notes.txt"):
        ...     _ = (d / name).write_bytes(b"")
        >>> [p.name for p in list_images([str(d)])]
        ['a.png']
    """
    return [p for p, _ in plan_outputs(inputs)]


def plan_outputs(
    inputs: tuple[str, ...] | list[str], out: str | Path | None = None
) -> list[tuple[Path, str]]:
    """Each image to process with its output name (a relative path without suffix).

    Images found in folders are never read from ``out`` (a previous run's outputs): inside
    an input folder, ``out`` is skipped whole; where ``out`` is an input folder itself,
    the files named like outputs (``*_deoccluded``, ``*_mask``, ``*_face0_crop``, ...).

    A folder's images are named by their path inside it (prefixed with the folder's name
    when several inputs are given); files given directly by their path below the folder
    they share. A file listed twice is processed once; names that still collide
    (``face.jpg`` beside ``face.png``) get ``_2``, ``_3``, ...

    Raises:
        InputError: an input that is neither a file nor a folder.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> for name in ("a/face.jpg", "b/face.jpg", "b/face.png"):
        ...     (d / name).parent.mkdir(exist_ok=True); _ = (d / name).write_bytes(b"")
        >>> [n for _, n in plan_outputs([str(d)])]
        ['a/face', 'b/face', 'b/face_2']
    """
    for s in inputs:
        if not Path(s).exists():
            raise InputError(f"{s}: no such image or folder")
    own = _own_outputs(inputs, out)
    return output_names(
        inputs,
        keep=lambda q: (
            q.suffix.lower() in IMAGE_SUFFIXES and not q.stem.endswith("_gt") and not own(q)
        ),
    )


def _own_outputs(inputs: tuple[str, ...] | list[str], out: str | Path | None):
    """A test for files that are (or may be) this command's outputs in ``out``."""
    if out is None:
        return lambda q: False
    root = Path(out).resolve()
    is_input = root in {Path(s).resolve() for s in inputs}

    def own(q: Path) -> bool:
        if not q.resolve().is_relative_to(root):
            return False
        return bool(_OUTPUT_STEM.search(q.stem)) if is_input else True

    return own


@dataclass
class _Tally:
    """Running counts of a run (mutable while it goes)."""

    n_written: int = 0
    n_faces: int = 0
    problems: list[str] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    sheet: list[tuple[str, Any, Any, Any]] = field(default_factory=list)


def run_inference(config: InferConfig, progress: Callable[..., None] | None = None) -> InferResult:
    """De-occlude every face in ``config.inputs`` and write the results to ``config.out``.

    Args:
        config: what to run.
        progress: called ``progress(0, total=n_images)`` then ``progress(1)`` per image.

    Returns:
        :class:`InferResult`; a write failure stops the run and is returned in ``error``.

    Raises:
        InputError: no images found; no default model (``ckpt`` None) where it belongs.
        ConfigError: unknown landmark source, expression preset the model lacks, or a
            checkpoint trained with a non-starter model but no ``model``.
        FormatError: unreadable checkpoint or model file.
    """
    if config.landmarks_from not in LANDMARK_SOURCES:
        raise ConfigError(
            f"landmarks_from must be one of {', '.join(LANDMARK_SOURCES)}, "
            f"got {config.landmarks_from!r}"
        )
    plan = plan_outputs(config.inputs, config.out)
    if not plan:
        raise InputError(f"{', '.join(config.inputs)}: no images found")
    if config.mask and not Path(config.mask).exists():
        raise InputError(f"{config.mask}: no such mask file or folder")
    if config.mask and not Path(config.mask).is_dir() and len(plan) > 1:
        raise ConfigError(
            f"--mask {config.mask}: one mask file for {len(plan)} images; give a folder of "
            "masks matched by name"
        )
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    with FolderLock(out, LOCK_NAME, "deocc-infer"):  # two runs never mix their outputs
        return _run_locked(config, plan, out, progress)


def _run_locked(
    config: InferConfig,
    plan: list[tuple[Path, str]],
    out: Path,
    progress: Callable[..., None] | None,
) -> InferResult:
    """:func:`run_inference` once ``out`` is locked."""
    t, grid = _Tally(), None
    pending: deque[_Pending] = deque()  # processed, not yet counted (their writes queued)
    with _PhotoIO(plan, out) as io:  # the first photo decodes while the models load
        run = load_run(config)
        log.debug("model: %s", run.label)
        if progress:
            progress(0, total=len(plan))
        try:
            error = _process_all(io, run, config, t, pending, progress)
        except STOPS as e:  # count what the writer finished; it removes what it had begun
            io.stop()
            _settle(pending, t, config, None, keep=0)
            raise Interrupted.of(e).with_message(
                f"{out}: the outputs of {t.n_written} of {len(plan)} image(s) are complete "
                "(none half-written); rerun the same command to do them all"
            ) from None
    if error is None and t.sheet:
        try:
            grid = write_image(out / GRID_NAME, face_sheet(t.sheet))
        except InputError as e:
            error = str(e)
    log.debug("%d face(s) in %d image(s), %d problem(s)", t.n_faces, t.n_written, len(t.problems))
    return InferResult(
        len(plan),
        t.n_written,
        t.n_faces,
        tuple(t.problems),
        tuple(t.outputs),
        run.label,
        error,
        grid,
    )


def _process_all(
    io: _PhotoIO,
    run: LoadedRun,
    config: InferConfig,
    t: _Tally,
    pending: deque[_Pending],
    progress: Callable[..., None] | None,
) -> str | None:
    """Every photo of the plan, counted in ``t`` in order; the write failure that stopped it."""
    for path, name, decoded in io.reads():
        try:
            photo = decoded.result()
            r = _deocclude_photo(photo, path, name, run, config)
        except SkipInput as e:  # unreadable or tiny image, missing or broken sidecar
            pending.append(_Pending([str(e) if str(path) in str(e) else f"{path}: {e}"]))
        else:
            skipped = [f"{path} {s}" for s in r.skipped]
            if r.faces:
                written = io.write(name, r, photo, run.model, config)
                pending.append(_Pending(skipped, name, r.faces, written))
            else:
                pending.append(_Pending(skipped or [f"{path}: no face found"]))
        error = _settle(pending, t, config, progress, keep=IO_DEPTH)
        if error:
            return error
    return _settle(pending, t, config, progress, keep=0)


@dataclass(frozen=True)
class _Pending:
    """A processed photo, counted once its outputs are written.

    ``written``: the writer's future of its de-occluded photo; None for a photo that yields
    nothing (``problems`` says why).
    """

    problems: list[str]
    name: str = ""
    faces: tuple[FaceOutput, ...] = ()
    written: Future[Path] | None = None


def _settle(
    pending: deque[_Pending],
    t: _Tally,
    config: InferConfig,
    progress: Callable[..., None] | None,
    keep: int,
) -> str | None:
    """Count the photos at the front of ``pending`` that are done, in order.

    Waits for the writer while more than ``keep`` photos are pending. Returns the write
    failure that stops the run (nothing after it is counted), else None.
    """
    while pending and (len(pending) > keep or _done(pending[0])):
        p, dst = pending[0], None
        if p.written is not None:
            try:  # a stop signal while waiting leaves p pending: the stop handler counts it
                dst = p.written.result()
            except _WriteFailed as e:
                return str(e)
            except _Stopped:  # a stop signal: nothing from here on was written
                return None
        pending.popleft()
        t.problems += p.problems
        if dst is not None:
            t.n_written += 1
            t.n_faces += len(p.faces)
            t.outputs.append(dst)
            for k, fo in enumerate(p.faces):
                if len(t.sheet) < config.grid:
                    t.sheet.append((f"{p.name} face {k}", fo.face.crop, fo.mask, fo.output))
        if progress:
            progress(1)
    return None


def _done(p: _Pending) -> bool:
    """Whether ``p`` can be counted without waiting."""
    return p.written is None or p.written.done()


@dataclass(frozen=True)
class LoadedRun:
    """What every image of a run needs.

    G (None: a given-mask G whose fill never runs it) and its spec, the 3DMM, the face
    preparation the shards used, the detector (or None), the device, and which model it is.
    """

    G: nn.Module | None
    spec: GeneratorSpec
    model: MorphableModel
    face_config: FaceInputConfig
    detector: LandmarkDetector | None
    device: torch.device
    label: str
    segmenter: nn.Module | None = None
    segmenter_choice: str = "none"  # what --segmenter resolved to: default, none or a file
    fill: str = "g"
    fill_model: MorphableModel | None = None


def load_run(config: InferConfig) -> LoadedRun:
    """Load the generator, the model its shards used, and the landmark detector.

    Raises:
        ConfigError: see :func:`run_inference`; for a given-mask G also an expression edit,
            or ``--segmenter none`` without ``--mask`` (nothing says where to fill).
    """
    device = resolve_device(config.device)
    fill = resolve_fill(config)
    # a given-mask G's render fill is its prefill alone: G is never run, so not built
    G, spec, info = resolve_generator(config.ckpt, device, given_g=fill != "render")
    given = spec.blend == "given"
    if given:  # one line before the 3DMM and the detector load
        check_given(config.expression)
    model = _load_model(config, info.get("data_model") or {}, info["path"])
    expression_coefficients(model, config.expression)  # fail early on a bad preset / file
    detector = None if config.landmarks_from in ("pts", "mat") else LazyDetector(config.backend)
    face_config = _face_config(spec, info.get("data_config") or {})
    segmenter, choice = resolve_segmenter(config.segmenter, config.ckpt, device, given=given)
    if given and segmenter is None and not config.mask:
        raise ConfigError(
            f"--segmenter {config.segmenter}: {info['label']} is a given-mask generator (blend "
            "given) and needs the occluded pixels: use --segmenter default (or a file) or --mask"
        )
    if given and segmenter is not None:
        _check_segmenter_match(info, choice)
    label = info["label"]
    if segmenter is not None:
        label += f" + segmenter {choice}"
    # a given-mask G is prepared with deocc-face already: its prefill needs no second model
    fill_model = load_model("deocc-face") if fill == "render" and not given else None
    if fill_model is not None:  # --fill render with --expression: one line before any photo
        check_fill(fill, fill_model, config.expression)
    if fill == "render":
        label += " + render fill only (G not run)" if given else " + render fill"
    return LoadedRun(
        None if G is None else prepare_generator(G),
        spec,
        model,
        face_config,
        detector,
        device,
        label,
        segmenter,
        choice,
        fill,
        fill_model,
    )


def _check_segmenter_match(info: dict[str, Any], choice: str) -> None:
    """Warn when a given-mask G runs with another segmenter than the one it was exported with.

    The export records the shipped segmenter's sha256 (the m̂ its card and evaluation
    describe); another one still runs, its masks just differ from those.
    """
    want = (info.get("segmenter") or {}).get("sha256")
    path = default_segmenter_path() if choice == "default" else Path(choice)
    if want and hashlib.sha256(path.read_bytes()).hexdigest() != want:
        log.warning(
            "%s was exported with segmenter sha256 %s, not %s's: its masks may differ from "
            "the ones it was evaluated with",
            info["label"],
            want[:16],
            path,
        )


def resolve_fill(config: InferConfig) -> str:
    """``--fill``, with ``auto`` made concrete.

    auto: with the shipped model the completed render (for the given-mask v2 G its prefill
    alone: on real masked photos G's residual draws a light seam along the jaw that the
    prefill does not have, docs/RESULTS.md) unless the expression is edited; G otherwise
    (``--ckpt``: the user's own G).
    """
    if config.fill != "auto":
        return config.fill
    shipped = is_shipped_model(config.ckpt) and config.expression == "keep"
    return "render" if shipped else "g"


def _load_model(config: InferConfig, data_model: dict[str, Any], source: str) -> MorphableModel:
    """``config.model``, else the checkpoint's (a shipped model only: others are the user's)."""
    spec = config.model
    if spec is None:
        name = data_model.get("name")
        if name not in (None, "deocc-starter", "deocc-face"):
            raise ConfigError(
                f"{source}: trained on shards built with model {name!r}: pass the model path"
            )
        spec = "deocc-face" if name == "deocc-face" else "starter"
    model = load_model(spec)
    if data_model.get("sha256") and data_model["sha256"] != model.sha256:
        log.warning(
            "3DMM %s (sha256 %s) is not the one %s was trained with (%s, sha256 %s): its "
            "renders will not match the training renders",
            spec,
            model.sha256[:16],
            source,
            data_model.get("name"),
            str(data_model["sha256"])[:16],
        )
    return model


def _face_config(spec: GeneratorSpec, data_config: dict[str, Any]) -> FaceInputConfig:
    """The training shards' face preparation (their build config's fit options) at G's size.

    A merged shard folder has one build config per source: inference fits like the first and
    renders in colour when every build did.
    """
    builds = build_configs(data_config.get("config"))
    if len({json.dumps(b.get("fit"), sort_keys=True) for b in builds}) > 1:
        log.warning("the training shards were fitted with different options: using the first's")
    fit = builds[0].get("fit") if builds else None
    # shards built before the colour render (no render_version) hold grey renders: match them
    colour = bool(builds) and all(int(b.get("render_version", 1)) >= 2 for b in builds)
    return FaceInputConfig(
        size=spec.size, fit=FitConfig(**fit) if fit else FitConfig(), colour=colour
    )


class _Stopped(Exception):
    """The writer was stopped (a stop signal, or an earlier photo's failed write)."""


class _PhotoIO:
    """Decodes photos ahead and writes outputs behind the photo being processed.

    One reader thread decodes the next photo of the plan; one writer thread writes photos'
    outputs in the order given. After a failed write, or :meth:`stop`, the writer removes
    what it had written of its current photo and writes no further one, so each photo's
    outputs are all there or none, as in a photo-by-photo run. Leaving the ``with`` block
    joins both threads (the writer first finishes what it was given, unless stopped).
    """

    def __init__(self, plan: list[tuple[Path, str]], out: Path) -> None:
        self.plan, self.out = plan, out
        self._stop = threading.Event()
        self._reader = ThreadPoolExecutor(1, "deocc-read")
        self._writer = ThreadPoolExecutor(1, "deocc-write")
        self._first = self._reader.submit(read_image, plan[0][0])

    def __enter__(self) -> _PhotoIO:
        return self

    def __exit__(self, *exc: object) -> None:
        self._reader.shutdown(cancel_futures=True)
        self._writer.shutdown()

    def reads(self) -> Iterator[tuple[Path, str, Future[npt.NDArray[np.uint8]]]]:
        """``(path, name, decoding)`` per photo of the plan, the next one already decoding.

        ``decoding.result()``: ``[H, W, 3]`` uint8 RGB, or :class:`SkipInput` (unreadable).
        """
        decoding = self._first
        for i, (path, name) in enumerate(self.plan):
            current = decoding
            if i + 1 < len(self.plan):
                decoding = self._reader.submit(read_image, self.plan[i + 1][0])
            yield path, name, current

    def write(
        self,
        name: str,
        r: PhotoOutput,
        photo: npt.NDArray[np.uint8],
        model: MorphableModel,
        config: InferConfig,
    ) -> Future[Path]:
        """Queue one photo's outputs.

        Returns:
            A future of its de-occluded photo's path; it raises :class:`_WriteFailed` (the
            photo's outputs removed) or :class:`_Stopped`.
        """
        return self._writer.submit(self._write, name, r, photo, model, config)

    def stop(self) -> None:
        """Stop the writer at its next file (what it began of a photo is removed)."""
        self._stop.set()

    def _write(
        self,
        name: str,
        r: PhotoOutput,
        photo: npt.NDArray[np.uint8],
        model: MorphableModel,
        config: InferConfig,
    ) -> Path:
        """:func:`_write_photo` in the writer thread."""
        try:
            return _write_photo(_Writer(self.out, name, self._stop), r, photo, model, config)
        except _WriteFailed:  # the run stops at this photo: write none after it
            self._stop.set()
            raise


class _Writer:
    """Writes one image's outputs; on a failure removes what it wrote and raises _WriteFailed.

    Before each file it checks ``stop``: once set, it removes what it wrote and raises
    :class:`_Stopped`.
    """

    def __init__(self, out: Path, name: str, stop: threading.Event) -> None:
        self.base = out / name
        self.stop = stop
        self.written: list[Path] = []

    def discard(self) -> None:
        """Remove what this image wrote (a failed write, or a stop)."""
        for p in self.written:
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass
        self.written = []

    def _fail(self, message: str) -> None:
        self.discard()
        raise _WriteFailed(message)

    def path(self, suffix: str) -> Path:
        """``<out>/<name><suffix>``, its folder created.

        Raises:
            _Stopped: ``stop`` is set (this image's outputs removed).
        """
        if self.stop.is_set():
            self.discard()
            raise _Stopped
        p = Path(f"{self.base}{suffix}")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._fail(f"{p.parent}: cannot create folder: {_reason(e)}")
        return p

    def image(self, suffix: str, img: npt.NDArray[np.uint8]) -> Path:
        """Write an image output (see :func:`deocc_core.imageio.write_image`)."""
        p = self.path(suffix)
        try:
            write_image(p, img)
        except InputError as e:
            self._fail(str(e))
        self.written.append(p)
        return p

    def meshes(self, tag: str, fo: FaceOutput, model: MorphableModel, mesh: MeshConfig) -> None:
        """The face's meshes (see :func:`deocc_core.recon.write_face_meshes`)."""
        stem = self.path(tag)
        before = set(stem.parent.glob(f"{stem.name}*"))
        try:
            self.written += write_face_meshes(stem, fo.face, fo.output, model, mesh)
        except (InputError, OSError) as e:
            self.written += sorted(set(stem.parent.glob(f"{stem.name}*")) - before)
            self._fail(str(e) if isinstance(e, InputError) else f"{stem}: {_reason(e)}")


def _reason(e: OSError) -> str:
    """``no space left on device``, ``permission denied``, ... (lower case)."""
    return (e.strerror or str(e)).lower()


def _deocclude_photo(
    photo: npt.NDArray[np.uint8], path: Path, name: str, run: LoadedRun, config: InferConfig
) -> PhotoOutput:
    """De-occlude the faces of one decoded ``[H, W, 3]`` uint8 RGB photo.

    Raises:
        SkipInput: too small an image, no user mask for it, or no sidecar for ``pts`` /
            ``mat``.
    """
    h, w = photo.shape[:2]
    if min(h, w) < MIN_FACE_PX:
        raise SkipInput("too small", f"{path}: {w}x{h} px image, a face needs {MIN_FACE_PX} px")
    given = None
    if config.mask:  # the user's mask (before the detector: a missing one skips the photo)
        given = read_user_mask(find_user_mask(config.mask, name), (h, w))
    found = landmarks_for(path, photo, config.landmarks_from, run.detector)
    return deocclude(
        photo,
        run.G,
        run.spec,
        run.model,
        None,
        run.device,
        landmarks=[f.landmarks for f in found],
        expression=config.expression,
        config=run.face_config,
        segmenter=run.segmenter,
        mask=given,
        fill=run.fill,
        fill_model=run.fill_model,
    )


def _write_photo(
    wr: _Writer,
    r: PhotoOutput,
    photo: npt.NDArray[np.uint8],
    model: MorphableModel,
    config: InferConfig,
) -> Path:
    """Write one photo's outputs; returns its de-occluded photo's path.

    Raises:
        _WriteFailed: an output could not be written (this photo's outputs removed).
        _Stopped: the writer was stopped (this photo's outputs removed).
    """
    for k, fo in enumerate(r.faces):
        _write_face(wr, f"_face{k}", fo, model, config)
    dst = wr.image("_deoccluded.png", r.image)
    wr.image("_mask.png", np.clip(r.weight * 255 + 0.5, 0, 255).astype(np.uint8))
    if config.side_by_side:
        wr.image("_side_by_side.png", np.concatenate([photo, r.image], 1))
    return dst


def _write_face(
    wr: _Writer, tag: str, fo: FaceOutput, model: MorphableModel, config: InferConfig
) -> None:
    """``<name><tag>_crop.png``, ``_render.png``, ``_output.png``, ``_mask.png``, the meshes.

    ``--mesh``, ``--detail``, ``--compare-occluded``: :func:`deocc_core.recon.write_face_meshes`.
    """
    wr.image(f"{tag}_crop.png", fo.face.crop)
    wr.image(f"{tag}_render.png", fo.face.render)
    wr.image(f"{tag}_output.png", fo.output)
    wr.image(f"{tag}_mask.png", fo.mask)
    if config.mesh or config.detail or config.compare_occluded:
        mesh = MeshConfig(
            detail=config.detail, compare_occluded=config.compare_occluded, uv=config.uv
        )
        wr.meshes(tag, fo, model, mesh)
