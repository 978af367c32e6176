"""``synth-occ build``: faces → (align, fit, render, occlude) → sharded HDF5 tuples.

Deterministic: the sample list of every shard is fixed by (source keys, split rule,
per-shard size), and each sample draws from its own RNG seeded by (seed, split, shard,
position, face, copy). Resumable: finished shards (final name + sidecar) are skipped.
Distributed: shard t goes to rank ``t % world_size``. Parallel: a pool of spawned worker
processes over shards; each loads the model and source once and writes whole shards itself
(its own HDF5 file and sidecar), so workers never wait on one writer and the parent does no
per-sample work: it hands out shard tasks, counts progress messages (one per source key)
and collects each shard's sidecar info and stage times. Workers run BLAS, OpenMP, numba
and OpenCV single-threaded: the pool is the parallelism (more threads per worker only
oversubscribe the cores). A worker that dies fails the build (``BrokenProcessPool``)
instead of hanging it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deocc_core import __version__
from deocc_core.check import check_crop_size, crop_size_problem
from deocc_core.errors import STOPS, ConfigError, InputError, Interrupted, SkipInput
from deocc_core.face.align import crop_matrix, outside_share
from deocc_core.face.prepare import (
    FaceInput,
    FaceInputConfig,
    prepare_face,
    refit_face,
    relight_face,
)
from deocc_core.fileio import FolderLock
from deocc_core.landmarks.detect import (
    DEFAULT_BACKEND,
    DETECTORS,
    LandmarkDetector,
    make_detector,
)
from deocc_core.morphable.ddfa import DDFA_MODELS
from deocc_core.morphable.fit import FitConfig
from deocc_core.morphable.model import MorphableModel, load_model
from deocc_core.morphable.params import pack_params
from deocc_core.occluders.classes import OccluderClass, Region
from deocc_core.occluders.composite import composite_occluder
from deocc_core.occluders.occlude import occlude_face
from deocc_core.occluders.regions import parse_region_mix
from deocc_core.occluders.scene import light_from_estimate, prepare_scene
from deocc_core.options import option
from deocc_core.render.light import LightConfig
from deocc_core.synth.manifest import (
    collect_manifest,
    finished_shards,
    sidecar_path,
    write_json_atomic,
    write_plan,
)
from deocc_core.synth.schema import FORMAT_VERSION, Sample
from deocc_core.synth.shards import ShardWriter, content_sha256, file_sha256
from deocc_core.synth.sources import SOURCES, FaceRecord, make_source, uses_dataset_params
from deocc_core.synth.splits import (
    MAX_YAW_DEG,
    SPLITS,
    assign_split,
    choose_test_identities,
    within_yaw,
    write_split_lists,
)
from deocc_core.timing import collect, stage

__all__ = [
    "BuildConfig",
    "BuildResult",
    "build",
    "default_model",
    "make_samples",
    "plan_shards",
    "ShardTask",
    "parse_classes",
    "preview_samples",
    "write_source_splits",
]

if TYPE_CHECKING:
    from deocc_core.occluders.assets import OccluderAssets

OCCLUDER_MODES = ("3d", "2d")
DEFAULT_REGION_MIX = "lower:0.4,upper:0.32,left_right_half:0.14,three_quarters:0.14"

log = logging.getLogger(__name__)

#: where the render's landmarks come from (first = default; see BuildConfig.fit_landmarks)
FIT_LANDMARKS = ("detected", "annotated")
#: the render's version, part of every build's content hash (2: the photo's colour and light,
#: estimated from the occluded composite)
RENDER_VERSION = 2
#: default --max-padding: share of the crop window allowed outside the photo. Measured at 128 px
#: (tools/bench/crop_padding.py): RMFD without_mask is bimodal (11% of faces at 0, 75% above
#: 0.3: tight face photos) and loses 77%; CelebAMask-HQ (median 0.05) loses 12%, deepface 1.5%
MAX_PADDING = 0.1
#: skip reasons of one occluded copy left out (counted per copy; a face that keeps no copy
#: is also one skipped input, FACE_LOST)
COPY_NOT_FOUND = "no face detected on one occluded copy (copies)"
COPY_NO_OCCLUDER = "no occluder could be placed on one copy (copies)"
COPY_REASONS = (COPY_NOT_FOUND, COPY_NO_OCCLUDER)
FACE_LOST = "every occluded copy left out (faces; their copies counted as above)"


def default_model(source: str) -> str:
    """The model a build uses without ``--model``.

    ``deocc-face`` for photo sources (the render is the person's own completed face, issue
    23); ``starter`` for the synthetic source (its faces are drawn from the model itself: the
    demo head).

    Example:
        >>> default_model("folder"), default_model("synthetic")
        ('deocc-face', 'starter')
    """
    return "starter" if source == "synthetic" else "deocc-face"


def parse_classes(spec: str) -> tuple[str, ...]:
    """``"all"`` or comma-separated class names → sorted tuple of lower-case names.

    Example:
        >>> parse_classes("hand,mask")
        ('hand', 'mask')
    """
    names = [m.name.lower() for m in OccluderClass]
    if spec.strip().lower() == "all":
        return tuple(names)
    want = tuple(sorted({s.strip().lower() for s in spec.split(",") if s.strip()}))
    bad = [w for w in want if w not in names]
    if bad or not want:
        raise ConfigError(
            f"unknown occluder class {', '.join(bad) or spec!r} "
            f"(choose from all, {', '.join(names)})"
        )
    return want


@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides a build's content (hashed into every shard).

    Each field's help, units and bounds are its ``option`` metadata (``synth-occ build
    --help``). Not hashed (they do not change the content): out, workers, rank, world_size,
    overwrite. ``fit`` is the face preparation inference repeats (a run keeps it).
    """

    source: str = option(help="Where faces come from.", choices=SOURCES)
    out: str = option(help="Shard folder (created).", path="out")
    root: str | None = option(
        None, "Source folder.", path="dir", default_help="none: only for --source synthetic"
    )
    model: str | None = option(
        None,
        "Morphable model path, 'starter' (the embedded demo head) or 'deocc-face' (deocc's face "
        "model learned from real photos: UV albedo, completed render).",
        default_help="deocc-face for photos; starter for --source synthetic",
    )
    size: int = option(256, "Crop side; the paper uses 256", units="px", check=crop_size_problem)
    per_shard: int = option(
        1024, "Samples per HDF5 shard (approximate for photos with several faces).", min=1
    )
    occluders: tuple[str, ...] = option(
        tuple(m.name.lower() for m in OccluderClass),
        "Occluder classes to draw.",
        choices=tuple(m.name.lower() for m in OccluderClass),
    )
    per_face: int = option(1, "Occluded copies per face.", min=1)
    occluders_per_sample: int = option(
        1, "Occluders drawn on each copy (> 1: overlapping occluders).", min=1
    )
    n_synthetic: int = option(1000, "Faces from the synthetic source.", min=1)
    seed: int = option(0, "Base seed: same seed + config = bit-identical shards.")
    test_fraction: float = option(
        0.1, "Share of identities held out as the test split.", min=0.0, max=1.0
    )
    max_yaw: float = option(MAX_YAW_DEG, "Skip faces turned further than this.", units="degrees")
    max_padding: float = option(
        MAX_PADDING,
        "Photo sources: skip faces whose crop window lies outside the photo by more than this "
        "share (the crop fills that part by replicating the photo's edges: streaks); 1: keep "
        "every face.",
        min=0.0,
        max=1.0,
    )
    limit: int | None = option(None, "Use only the first N inputs.", min=1, default_help="all")
    test_count: int | None = option(
        None,
        "Hold out whole identities until the test split has at least N samples (overrides "
        "--test-fraction; the paper: 2000).",
        min=1,
        default_help="off",
    )
    backend: str = option(
        DEFAULT_BACKEND,
        "Landmark backend for folder photos without sidecars, and for --fit-landmarks detected.",
        choices=tuple(DETECTORS),
    )
    fit_landmarks: str = option(
        FIT_LANDMARKS[0],
        "Landmarks the 3DMM render is fitted to: 'detected' (the backend's, found on each "
        "occluded copy, as deocc-infer does: train like you test) or 'annotated' (the source's).",
        choices=FIT_LANDMARKS,
    )
    occluder_assets: str | None = option(
        None,
        "Folder of real occluder images (MaskTheFace masks.cfg + templates + textures, RGBA "
        "PNGs): some occluders are taken from them and cloth masks wear their textures.",
        default_help="none",
    )
    asset_share: float = option(
        0.3,
        "Share of occluders taken from --occluder-assets where a pack covers the drawn class "
        "(3d mode); 1: only the real images, never our objects, for those classes (a held-out "
        "occluder test set; draw only the classes the packs cover with --occluders).",
        min=0.0,
        max=1.0,
    )
    occluder_mode: str = option(
        "3d",
        "3d: objects on the fitted head, matched to the photo; 2d: the earlier flat "
        "procedural layers (for comparison).",
        choices=OCCLUDER_MODES,
    )
    region_mix: str = option(
        DEFAULT_REGION_MIX,
        "Target shares of the evaluation regions, name:weight comma-separated (3d mode).",
    )
    workers: int = option(1, "Worker processes.", min=1)
    rank: int = option(0, "This machine's rank.", min=0)
    world_size: int = option(1, "Number of ranks.", min=1)
    overwrite: bool = option(False, "Replace shards of a different config in --out.")
    dataset_params: bool = option(
        True,
        "300W-LP / AFLW2000-3D with 3DDFA's BFM as --model: render the 3DMM parameters the "
        "datasets ship (Shape/Exp/Pose_Para, the paper's protocol) instead of fitting the "
        "landmarks; other models always fit.",
    )
    fit: FitConfig = FitConfig()

    def __post_init__(self) -> None:
        check_crop_size(self.size)
        if self.model is None:
            object.__setattr__(self, "model", default_model(self.source))

    def face_input(self) -> FaceInputConfig:
        """How each face becomes a crop, fit and render (shared with inference)."""
        return FaceInputConfig(size=self.size, fit=self.fit)

    def content(self) -> dict[str, Any]:
        """The hashed part of the config, as saved in every shard and sidecar.

        Options added after the first builds are left out at their defaults, and
        ``backend`` keeps its first name ``detector``, so older builds keep their hashes.
        """
        skip = {"workers", "rank", "world_size", "overwrite", "out"}
        if self.test_count is None:
            skip.add("test_count")
        if self.dataset_params:
            skip.add("dataset_params")
        if self.fit == FitConfig():
            skip.add("fit")
        if self.asset_share == 0.3:  # added later: the default keeps older builds' hashes
            skip.add("asset_share")
        if self.max_padding == 1.0 or self.source == "synthetic":  # added later; photos only
            skip.add("max_padding")
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}
        d["detector"] = d.pop("backend")
        d["render_version"] = RENDER_VERSION
        return d

    def content_hash(self) -> str:
        """16 hex digits of the sha256 of :meth:`content` (names a build in shards, sidecars)."""
        return hashlib.sha256(
            json.dumps(self.content(), sort_keys=True, default=list).encode()
        ).hexdigest()[:16]


@dataclass(frozen=True)
class ShardTask:
    """One shard to write: its split, index and source keys."""

    split: str
    index: int
    keys: tuple[str, ...]

    @property
    def name(self) -> str:
        """File stem: ``<split>-NNNNN``."""
        return f"{self.split}-{self.index:05d}"


@dataclass
class BuildResult:
    """What a build did."""

    out: Path
    written: list[str] = field(default_factory=list)
    skipped_existing: list[str] = field(default_factory=list)
    samples: Counter = field(default_factory=Counter)
    skipped_inputs: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    manifest: dict[str, Any] | None = None
    planned: int = 0
    #: CPU seconds per stage of the sample path, summed over the workers (``deocc_core.timing``)
    stage_seconds: Counter = field(default_factory=Counter)


def _identity(source, key: str) -> str:
    return source.identity(key) if hasattr(source, "identity") else key


def plan_shards(config: BuildConfig, source) -> list[ShardTask]:
    """Deterministic shard list: keys split by identity, chunked in key order."""
    keys = source.keys()
    if config.limit is not None:
        keys = keys[: config.limit]
    if not keys:
        raise InputError(f"{config.root or config.source}: the source has no inputs")
    by_split: dict[str, list[str]] = {s: [] for s in SPLITS}
    if config.test_count is not None:
        test_ids = choose_test_identities(
            [(k, _identity(source, k)) for k in keys], -(-config.test_count // config.per_face)
        )
        for k in keys:
            by_split["test" if _identity(source, k) in test_ids else "train"].append(k)
    else:
        for k in keys:
            by_split[assign_split(_identity(source, k), test_fraction=config.test_fraction)].append(
                k
            )
    per = max(1, config.per_shard // config.per_face)
    tasks = []
    for split in SPLITS:
        ks = by_split[split]
        for i in range(0, len(ks), per):
            tasks.append(ShardTask(split, i // per, tuple(ks[i : i + per])))
    return tasks


def make_samples(
    record: FaceRecord,
    config: BuildConfig,
    model: MorphableModel,
    rng: np.random.Generator,
    assets: OccluderAssets | None = None,
    detector: LandmarkDetector | None = None,
    dropped: Counter | None = None,
) -> list[Sample]:
    """Turn one face into ``per_face`` training tuples (the preview uses this too).

    The crop and the fit that places the occluders come from
    :func:`deocc_core.face.prepare_face` (the function inference runs on a photo) with the
    source's landmarks; each copy gets its own occluder(s): 3D objects on the fitted head
    (:func:`deocc_core.occluders.occlude.occlude_face`) by default. Then each copy's render
    and M are made as inference makes them from that composite: fitted to the landmarks
    ``detector`` finds on it (``config.fit_landmarks == "detected"``, the default; else the
    source's), coloured and lit from it (:func:`deocc_core.face.relight_face`), so the
    render never shows the skin the occluder hides.

    A copy on which no occluder could be placed, or (``detected``) whose composite shows no
    face, is left out and its reason counted in ``dropped``.

    Raises:
        SkipInput: yaw beyond ``max_yaw`` (the source's yaw, or the fit's beyond
            ``max_yaw`` + 10 degrees); implausible landmarks; every copy left out.
        ConfigError: an unknown ``occluder_mode`` or a bad ``region_mix``.
    """
    face_cfg = config.face_input()
    face = _prepared_face(record, model, config, face_cfg)
    if config.occluder_mode not in OCCLUDER_MODES:
        raise ConfigError(
            f"unknown occluder mode {config.occluder_mode!r} "
            f"(choose from {', '.join(OCCLUDER_MODES)})"
        )
    if config.fit_landmarks == "detected" and detector is None:
        detector = make_detector(config.backend)
    occlude = _copy_occluder(face, record, model, face_cfg, config, assets)
    out, lost = [], Counter()
    for _ in range(config.per_face):
        with stage("occlude"):
            occ = occlude(rng)
        if not occ.occ_mask.any():  # every draw failed (a thin cut-out's warp): not a sample
            lost[COPY_NO_OCCLUDER] += 1
            continue
        if config.fit_landmarks == "detected":
            rendered = _fit_detected(face, occ.image, model, face_cfg, detector)
            if rendered is None:
                lost[COPY_NOT_FOUND] += 1
                continue
        else:
            rendered = relight_face(face, occ.image, model, face_cfg)
        out.append(_sample(record, face, occ, rendered))
    if dropped is not None:
        dropped.update(lost)
    if not out:  # the face is one skipped input besides its copies' reasons
        raise SkipInput(FACE_LOST)
    return out


def _prepared_face(
    record: FaceRecord, model: MorphableModel, config: BuildConfig, face_cfg: FaceInputConfig
) -> FaceInput:
    """The source face cropped, fitted and rendered; faces turned too far are skipped."""
    if not within_yaw(record.yaw_deg, config.max_yaw):
        raise SkipInput("yaw beyond --max-yaw")
    if config.source != "synthetic":  # the synthetic canvas is no photo: its builds keep all
        window = crop_matrix(record.landmarks, face_cfg.size)
        if outside_share(window, face_cfg.size, record.image.shape[:2]) > config.max_padding:
            raise SkipInput("crop outside the photo (--max-padding)")
    face = prepare_face(record.image, record.landmarks, model, face_cfg, params=record.params)
    if not within_yaw(np.degrees(face.fit.params.pose.yaw), config.max_yaw + 10):
        raise SkipInput("yaw beyond --max-yaw")
    return face


def _copy_occluder(
    face: FaceInput,
    record: FaceRecord,
    model: MorphableModel,
    face_cfg: FaceInputConfig,
    config: BuildConfig,
    assets: OccluderAssets | None,
) -> Callable[[np.random.Generator], Any]:
    """``occlude(rng)`` for this face: one occluded copy (image, masks, class, region) a call.

    3D mode builds the face's occluder scene once (its light, skin and photo statistics);
    2D mode draws the flat procedural layers.
    """
    classes = [OccluderClass[c.upper()] for c in config.occluders]
    packs = list(assets.packs) if assets else []
    if config.occluder_mode == "2d":
        yaw = float(np.degrees(face.fit.params.pose.yaw))
        return lambda rng: composite_occluder(
            face.crop,
            face.landmarks,
            rng,
            classes=classes,
            face_mask=face.face_mask,
            yaw=yaw,
            packs=packs,
            count=config.occluders_per_sample,
        )
    sh, skin = _scene_light(face, model, face_cfg)
    scene = prepare_scene(
        face.crop,
        face.landmarks,
        model,
        face.fit.params,
        face.render_result.depth,
        face.face_mask,
        raster=face.render_result.raster,
        sh=sh,
        skin=skin,
        jpeg_quality=record.jpeg_quality,
        source_scale=float(np.sqrt(abs(np.linalg.det(face.matrix[:, :2])))),
    )
    mix = parse_region_mix(config.region_mix)
    fabrics = list(assets.fabrics) if assets else None
    return lambda rng: occlude_face(
        scene,
        rng,
        classes=classes,
        mix=mix,
        count=config.occluders_per_sample,
        fabrics=fabrics,
        packs=packs,
        pack_share=config.asset_share,
    )


def _sample(record: FaceRecord, face: FaceInput, occ: Any, rendered: FaceInput) -> Sample:
    """One shard tuple: the occluded copy, its render and M, the clean crop as ground truth."""
    return Sample(
        occluded=occ.image,
        render=rendered.render,
        gt=face.crop,
        face_mask=rendered.face_mask,
        occ_mask=occ.occ_mask,
        changed_mask=occ.changed_mask,
        landmarks=face.landmarks,
        params=pack_params(rendered.fit.params),
        occluder_class=int(occ.occluder_class),
        region=int(occ.region),
        identity=record.identity,
        source_key=record.source_key,
    )


def _scene_light(
    face: FaceInput, model: MorphableModel, config: FaceInputConfig
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The occluder scene's light and skin from the estimate ``prepare_face`` already made.

    For a shape-only model with the default light options that estimate has exactly the
    inputs :func:`~deocc_core.occluders.scene.photo_light` would give it (the crop, the
    render's raster, the skin field as reference albedo), so it is not made twice. Else
    ``(None, None)``: the scene estimates its own.
    """
    if face.light is None or face.light_samples is None:
        return None, None
    if model.has_albedo or config.light != LightConfig():
        return None, None
    return light_from_estimate(face.light, face.light_samples)


def _fit_detected(
    face: FaceInput,
    composite: np.ndarray,
    model: MorphableModel,
    config: FaceInputConfig,
    detector: LandmarkDetector,
) -> FaceInput | None:
    """``face`` refitted to the landmarks ``detector`` finds on ``composite`` (crop pixels).

    The detected face nearest the source's landmarks; None when there is none (or its fit
    is implausible), as inference would skip it.
    """
    size = float(np.ptp(face.landmarks, 0).max())
    centre = face.landmarks.mean(0)
    with stage("detect"):
        found = detector.detect(composite)
    near = [f for f in found if np.linalg.norm(f.landmarks.mean(0) - centre) < size / 3]
    if not near:
        return None
    best = min(
        near, key=lambda f: float(np.linalg.norm(f.landmarks - face.landmarks, axis=1).mean())
    )
    try:
        return refit_face(face, best.landmarks, composite, model, config)
    except SkipInput:
        return None


def _open_source(config: BuildConfig, model: MorphableModel):
    if config.source == "synthetic" and not model.has_albedo:
        # shape-only models (Surrey SFM, BFM basis) fit and render; the faces come from the
        # starter's albedo
        model = load_model("starter")
    return make_source(
        config.source,
        config.root,
        model=model,
        n=config.n_synthetic,
        size=max(config.size * 2, 128),
        seed=config.seed,
        backend=config.backend,
        dataset_params=config.dataset_params,
    )


def _load_assets(config: BuildConfig) -> OccluderAssets | None:
    if not config.occluder_assets:
        return None
    from deocc_core.occluders.assets import load_occluder_assets

    return load_occluder_assets(config.occluder_assets)


def preview_samples(
    config: BuildConfig,
    n: int,
    progress: Callable[..., None] | None = None,
    *,
    yaw: tuple[float, float] | None = None,
    pitch: tuple[float, float] | None = None,
) -> list[Sample]:
    """The first ``n`` samples a build of ``config`` would make from its first usable faces.

    One RNG seeded with ``config.seed`` draws the occluders (not the build's per-shard
    streams).

    Args:
        config: the build config.
        n: samples wanted.
        progress: called with 1 per sample.
        yaw: keep faces whose fitted |yaw| lies in this range, degrees (all by default).
        pitch: keep faces whose fitted pitch lies in this range, degrees (negative: looking
            up).
    """
    model = load_model(config.model)
    source = _open_source(config, model)
    assets = _load_assets(config)
    detector = make_detector(config.backend) if config.fit_landmarks == "detected" else None
    rng = np.random.default_rng(config.seed)
    samples: list[Sample] = []
    for key in source.keys():
        if len(samples) >= n:
            break
        try:
            for rec in source.load(key):
                made = make_samples(rec, config, model, rng, assets, detector)
                p_deg, y_deg = np.degrees(made[0].params[-5:-3])  # [.. | scale, pitch, yaw, ..]
                if yaw is not None and not yaw[0] <= abs(y_deg) <= yaw[1]:
                    continue
                if pitch is not None and not pitch[0] <= p_deg <= pitch[1]:
                    continue
                for s in made:
                    samples.append(s)
                    if progress:
                        progress(1)
        except SkipInput:
            continue
    return samples[:n]


def write_source_splits(config: BuildConfig, prefix: Path) -> dict[str, Path]:
    """Write the identity-disjoint split lists of ``config``'s source (``synth-occ splits``).

    Returns:
        split name → the list written (``<prefix>.<split>.txt``).
    """
    source = _open_source(config, load_model("starter"))
    keys = ((k, _identity(source, k)) for k in source.keys())
    return write_split_lists(prefix, keys, test_fraction=config.test_fraction)


_WORKER: dict[str, Any] = {}

#: environment of the worker processes: one thread per library (the pool is the parallelism)
SINGLE_THREAD_ENV = {
    k: "1"
    for k in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "NUMBA_NUM_THREADS",
    )
}


def _die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _init_worker(config: BuildConfig, queue, single_thread: bool = False) -> None:
    if single_thread:  # a pool worker; BLAS / OpenMP / numba read SINGLE_THREAD_ENV at import
        import cv2

        cv2.setNumThreads(1)
        # Ctrl-C reaches the whole process group: the parent stops the workers (and
        # removes their partial shards) and says what was kept; they never outlive it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with_parent()
    model = load_model(config.model)
    _WORKER.update(
        config=config,
        model=model,
        source=_open_source(config, model),
        queue=queue,
        assets=_load_assets(config),
        detector=make_detector(config.backend) if config.fit_landmarks == "detected" else None,
    )


@dataclass
class _ShardTally:
    """What went into one shard: counts per class / region, identities, skipped inputs."""

    classes: Counter = field(default_factory=Counter)
    regions: Counter = field(default_factory=Counter)
    identities: set[str] = field(default_factory=set)
    skipped: Counter = field(default_factory=Counter)

    def add(self, s: Sample) -> None:
        self.classes[OccluderClass(s.occluder_class).name.lower()] += 1
        self.regions[Region(s.region).name.lower()] += 1
        self.identities.add(s.identity)


def _build_shard(task: ShardTask) -> tuple[dict[str, Any], Counter]:
    """Write one shard (in a worker: see ``_init_worker``) and its sidecar.

    Returns:
        ``(sidecar info, CPU seconds per stage)``.
    """
    with collect() as stages:
        info = _write_shard(task)
    return info, stages


def _write_shard(task: ShardTask) -> dict[str, Any]:
    cfg: BuildConfig = _WORKER["config"]
    model = _WORKER["model"]
    path = Path(cfg.out) / f"{task.name}.h5"
    attrs = {
        "config": json.dumps(cfg.content(), sort_keys=True, default=list),
        "config_hash": cfg.content_hash(),
        "seed": cfg.seed,
        "split": task.split,
        "shard_index": task.index,
        "model_name": model.name,
        "model_sha256": model.sha256,
    }
    n_params = model.n_id + model.n_exp + 6
    capacity = len(task.keys) * cfg.per_face * 8
    tally = _ShardTally()
    # "write": opening, adding (compression happens there) and closing (flush, fsync, rename)
    with stage("write"), ShardWriter(path, cfg.size, n_params, capacity, attrs) as writer:
        for pos, key in enumerate(task.keys):
            with stage("other"):  # what no finer stage claims: seeding, glue, tallies
                made = _add_samples(writer, task, pos, key, tally)
            if _WORKER["queue"] is not None:
                _WORKER["queue"].put(made)
    with stage("hash"):  # the sidecar's checksums: the file read back, decompressed
        sha, content = file_sha256(path), content_sha256(path)
    info = {
        "file": path.name,
        "split": task.split,
        "index": task.index,
        "count": writer.count,
        "sha256": sha,
        "content_sha256": content,
        "classes": dict(tally.classes),
        "regions": dict(tally.regions),
        "identities": sorted(tally.identities),
        "skipped": dict(tally.skipped),
        "config": cfg.content(),
        "config_hash": cfg.content_hash(),
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "resolution": cfg.size,
        "model": {"name": model.name, "sha256": model.sha256},
    }
    write_json_atomic(sidecar_path(path), info)
    return info


def _add_samples(
    writer: ShardWriter, task: ShardTask, pos: int, key: str, tally: _ShardTally
) -> int:
    """The samples of source key ``key`` (position ``pos`` in the shard) into ``writer``.

    Each face draws from its own RNG seeded by (seed, split, shard, position, face). An input
    that yields nothing is counted in ``tally.skipped``, never fatal.
    """
    cfg: BuildConfig = _WORKER["config"]
    made = 0
    try:
        with stage("synthetic face" if cfg.source == "synthetic" else "decode"):
            records = _WORKER["source"].load(key)
        for f_idx, rec in enumerate(records):
            seed = [cfg.seed, SPLITS.index(task.split), task.index, pos, f_idx]
            rng = np.random.default_rng(seed)
            samples = make_samples(
                rec,
                cfg,
                _WORKER["model"],
                rng,
                _WORKER["assets"],
                _WORKER["detector"],
                dropped=tally.skipped,
            )
            for s in samples:
                with stage("write"):
                    writer.add(s)
                tally.add(s)
                made += 1
    except SkipInput as e:
        tally.skipped[e.reason] += 1
    except InputError as e:  # a broken annotation: count it, keep building
        tally.skipped[type(e).__name__] += 1
        log.warning("%s", e)
    return made


def _probe_source(config: BuildConfig, source, keys: list[str]) -> None:
    """Fail fast (before any shard is written) when none of the first inputs loads.

    A wrong ``--root`` or layout would otherwise produce empty shards.
    """
    reasons: Counter = Counter()
    for k in keys:
        try:
            if source.load(k):
                return
            reasons["no face"] += 1
        except SkipInput as e:
            reasons[e.reason] += 1
        except InputError as e:
            reasons[str(e)[:120]] += 1
    summary = "; ".join(f"{r} ×{n}" for r, n in reasons.most_common(3))
    raise InputError(
        f"{config.root or config.source}: none of the first {len(keys)} inputs of source "
        f"{config.source!r} is usable ({summary}); does --root hold the {config.source} layout?"
    )


def _existing(out: Path, config: BuildConfig) -> dict[str, str]:
    """Name → config_hash of finished shards in ``out`` (a damaged sidecar: not finished)."""
    done, damaged = finished_shards(out)
    for problem in damaged:
        log.warning("%s: that shard is written again", problem)
    return {shard.stem: info["config_hash"] for shard, info in done}


def build(config: BuildConfig, progress: Callable[..., None] | None = None) -> BuildResult:
    """Build (or resume) the shards of ``config`` assigned to this rank.

    Args:
        config: the build configuration.
        progress: called as ``progress(n, total=None)`` per processed input.

    Raises:
        ConfigError: existing shards from another config (without ``overwrite``), bad rank,
            another build of this rank writing into ``out``.
        InputError: missing source / model files.
    """
    t0 = time.perf_counter()
    out = _prepare_output(config)
    with FolderLock(out, f".build-rank{config.rank}.lock", "synth-occ build"):  # one per rank
        return _build_locked(config, out, progress, t0)


def _build_locked(
    config: BuildConfig, out: Path, progress: Callable[..., None] | None, t0: float
) -> BuildResult:
    """:func:`build` once its output folder is prepared and locked."""
    model = load_model(config.model)
    source = _open_source(config, model)
    _log_face_path(config, model)
    tasks = plan_shards(config, source)
    write_plan(out, len(tasks), config.content_hash())
    mine = [t for i, t in enumerate(tasks) if i % config.world_size == config.rank]
    existing = _clear_stale(out, config, mine)
    result = BuildResult(out, planned=len(tasks))
    todo = []
    for t in mine:
        if existing.get(t.name) == config.content_hash():
            result.skipped_existing.append(t.name)
        else:
            todo.append(t)
    if todo:
        _probe_source(config, source, [k for t in tasks for k in t.keys][:8])
    try:
        written = _write_shards(config, todo, progress)
    except BaseException as e:  # workers stopped: no partial shard stays
        _remove_partials(out, todo)
        if not isinstance(e, STOPS):
            raise
        done, _ = finished_shards(out)
        raise Interrupted.of(e).with_message(
            f"{out}: {len(done)} of {len(tasks)} shards are complete and kept (partial ones "
            "removed); rerun the same command to resume"
        ) from None
    for info, stages in written:
        result.written.append(info["file"])
        result.samples[info["split"]] += info["count"]
        result.skipped_inputs.update(info["skipped"])
        result.stage_seconds.update(stages)
    if result.written or result.skipped_existing:
        result.manifest = collect_manifest(out, expected=len(tasks))
    result.seconds = time.perf_counter() - t0
    return result


def _log_face_path(config: BuildConfig, model: MorphableModel) -> None:
    """Say in the log how this build gets each face's 3DMM parameters (and its render's)."""
    then = (
        "; each copy's render is then refit to the landmarks detected on its occluded "
        "composite (--fit-landmarks detected; 'annotated' renders these parameters)"
        if config.fit_landmarks == "detected"
        else ""
    )
    if config.source not in ("aflw2000-3d", "300w3d"):
        log.info("3DMM parameters: fitted to the landmarks (model %s)%s", model.name, then)
    elif uses_dataset_params(model, config.dataset_params):
        log.info(
            "3DMM parameters: the dataset's own (Shape/Exp/Pose_Para of each .mat, the "
            "paper's protocol) for model %s, not fitted (--no-dataset-params fits)%s",
            model.name,
            then,
        )
    else:
        why = (
            "--no-dataset-params"
            if not config.dataset_params
            else f"model {model.name} is not 3DDFA's BFM ({', '.join(DDFA_MODELS)})"
        )
        log.info("3DMM parameters: fitted to the landmarks (%s)%s", why, then)


def _prepare_output(config: BuildConfig) -> Path:
    """The shard folder, created and checked writable (this rank's probe file)."""
    if not 0 <= config.rank < config.world_size:
        raise ConfigError(f"rank {config.rank} outside world size {config.world_size}")
    parse_classes(",".join(config.occluders))
    out = Path(config.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{config.rank}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"{out}: shard folder is not writable ({e.strerror or e})") from None
    return out


def _clear_stale(out: Path, config: BuildConfig, mine: list[ShardTask]) -> dict[str, str]:
    """Remove shards of another config (``overwrite`` only) and this rank's partial files.

    Returns:
        name → config hash of the finished shards left in ``out``.
    """
    existing = _existing(out, config)
    other = sorted(n for n, h in existing.items() if h != config.content_hash())
    if other and not config.overwrite:
        raise ConfigError(
            f"{out}: holds {len(other)} shards from a different build config (e.g. "
            f"{other[0]}.h5); use --overwrite or another --out"
        )
    for n in other:
        (out / f"{n}.h5").unlink(missing_ok=True)
        (out / f"{n}.json").unlink(missing_ok=True)
        del existing[n]
    _remove_partials(out, mine)  # only this rank's: other ranks may be writing here
    return existing


def _remove_partials(out: Path, tasks: list[ShardTask]) -> None:
    """Remove the temp files of ``tasks``' shards and sidecars, and shards without a sidecar.

    A shard is finished once its sidecar is written (a worker stopped in between leaves an
    ``.h5`` that nothing counts; the rerun writes it again).
    """
    for t in tasks:
        (out / f"{t.name}.h5.partial").unlink(missing_ok=True)
        for stale in out.glob(f"{t.name}.json.*partial"):
            stale.unlink(missing_ok=True)
        if not (out / f"{t.name}.json").exists():
            (out / f"{t.name}.h5").unlink(missing_ok=True)


def _write_shards(
    config: BuildConfig, todo: list[ShardTask], progress: Callable[..., None] | None
) -> list[tuple[dict[str, Any], Counter]]:
    """Write ``todo`` in this process or a spawned pool of ``workers``.

    Returns:
        Per shard: its sidecar info and CPU seconds per stage.
    """
    if progress:
        progress(0, total=sum(len(t.keys) for t in todo))
    if config.workers <= 1 or len(todo) <= 1:
        _init_worker(config, None)
        results = []
        for t in todo:
            results.append(_build_shard(t))
            if progress:
                progress(len(t.keys))
        return results
    ctx = mp.get_context("spawn")
    messages = ctx.Queue()  # one message per source key: progress only
    saved = {k: os.environ.get(k) for k in SINGLE_THREAD_ENV}
    os.environ.update(SINGLE_THREAD_ENV)  # inherited by the workers as they are spawned
    try:
        with ProcessPoolExecutor(
            min(config.workers, len(todo)),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(config, messages, True),
        ) as pool:
            try:
                futures = [pool.submit(_build_shard, t) for t in todo]
                pending, reported = set(futures), 0
                while pending:
                    _, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    reported += _drain(messages, progress)
                results = [f.result() for f in futures]  # re-raises a worker's error
            except BaseException:  # a stop signal or a failed shard: no worker goes on
                _stop_workers(pool)
                raise
        if progress:  # messages still in flight when the last shard finished
            progress(max(sum(len(t.keys) for t in todo) - reported, 0))
        return results
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's workers now and wait for them (they write nothing more)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public handle
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(10)


def _drain(messages, progress: Callable[..., None] | None) -> int:
    """Report the progress messages waiting in ``messages``; how many there were."""
    n = 0
    while True:
        try:
            messages.get_nowait()
        except queue_mod.Empty:
            return n
        n += 1
        if progress:
            progress(1)
