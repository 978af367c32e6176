"""Run every benchmark in tools/bench/ and collect one JSON + a markdown table.

Each ``bench_*.py`` prints one JSON object on stdout. This script runs them one after the
other (never in parallel: they would share the two cores), adds the machine description and
writes ``<out>/bench.json`` and ``<out>/bench.md`` (each figure beside the same figure of
``--previous``, by default ``docs/bench.json``: the figures the README quotes). bench.md
opens with the headline figures (:data:`HEADLINES`: issue 26's goals) beside their previous
values and goals.

``--quick`` is a smoke run: only the benchmarks of the headline figures, each with its
small settings (:data:`QUICK_ARGS`); its figures are rougher than a full run's.

    python tools/bench/run_all.py --out bench_out [--only render,synth] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (figure, benchmark, flattened key in its result, goal): the figures issue 26 asks for
HEADLINES = (
    (
        "deocc-infer ms per face, default settings, all photos",
        "infer",
        "infer_default_cpu.per_face_ms_all_photos",
        "<= 100",
    ),
    (
        "deocc-infer ms per face, photos up to 1 MP",
        "infer",
        "infer_default_cpu.per_face_ms_up_to_1mp",
        "<= 100",
    ),
    (  # what a user with a folder waits: reads and writes overlap the face work
        "deocc-infer ms per face, one folder run of the 7 photos, start-up taken off",
        "infer",
        "infer_default_cpu.folder.per_face_ms_after_startup",
        "<= 100",
    ),
    *(
        (
            f"photo build samples/s, {layout}, 256 px, 3D occluders, 2 workers",
            "synth",
            f"photo_landmarks_given_surrey_256px_2_workers.{layout}.build_2_workers.samples_per_s",
            ">= 40",
        )
        for layout in ("aflw2000-3d", "300w3d", "folder")
    ),
    (
        "photo build CPU ms per sample, aflw2000-3d, one warm process",
        "synth",
        "photo_landmarks_given_surrey_256px_2_workers.aflw2000-3d.stages_one_process"
        ".cpu_ms_per_sample",
        "",
    ),
    (
        "render_face ms, BFM mean, 256 px, 1 thread, yaw 0 (min)",
        "render",
        "yaw0.render_face.min_ms",
        "<= 3",
    ),
    ("render_face ms, yaw 45 (min)", "render", "yaw45.render_face.min_ms", "<= 3"),
)
#: the smoke run's arguments per benchmark (``--quick``: only these benchmarks run)
QUICK_ARGS = {
    "infer": ["--repeat", "1"],
    "render": ["--repeats", "10"],
    "synth": ["--quick", "--skip", "detected,synthetic,compression"],
}


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    import torch

    info: dict[str, object] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def _parse_json(stdout: str) -> object | None:
    """The benchmark's JSON: the whole output, or else its last line that parses."""
    for text in [stdout, *reversed(stdout.strip().splitlines())]:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            continue
    return None


def _flatten(prefix: str, obj: object, out: dict[str, object]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, (int, float, str, bool)) or obj is None:
        out[prefix] = obj


def _cell(v: object) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _previous(path: Path) -> dict[str, dict]:
    """The benchmarks of an earlier run's bench.json (empty when missing or unreadable)."""
    try:
        return json.loads(path.read_text()).get("benchmarks", {})
    except (OSError, ValueError, AttributeError):
        return {}


def _figure(entries: dict, name: str, key: str) -> object:
    """The flattened ``key`` of benchmark ``name``'s result, or "" when absent."""
    flat: dict[str, object] = {}
    _flatten("", entries.get(name, {}).get("result", {}), flat)
    return flat.get(key, "")


def _headlines(entries: dict, previous: dict, shown: str) -> list[str]:
    """bench.md's opening table: each :data:`HEADLINES` figure, its previous value and goal."""
    lines = [
        "## Headline figures (issue 26)",
        "",
        f"| figure | this run | previous ({shown}) | goal |",
        "|---|---|---|---|",
    ]
    for label, name, key, goal in HEADLINES:
        now, before = _figure(entries, name, key), _figure(previous, name, key)
        lines.append(f"| {label} | {_cell(now)} | {_cell(before)} | {goal} |")
    return [*lines, "", "## All figures", ""]


def main() -> int:
    """Run every benchmark and write their JSON to ``--out``."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--out", type=Path, default=Path("bench_out"), help="output folder (default: bench_out)"
    )
    ap.add_argument(
        "--only", default="", help="comma-separated bench names (default: all), e.g. render,synth"
    )
    ap.add_argument(
        "--timeout", type=float, default=1800, help="seconds per benchmark (default: 1800)"
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: only the headline benchmarks (infer, render, synth), small settings",
    )
    ap.add_argument(
        "--previous",
        type=Path,
        default=HERE.parents[1] / "docs" / "bench.json",
        help="an earlier bench.json shown beside each figure in bench.md "
        "(default: docs/bench.json, the figures in the README)",
    )
    args = ap.parse_args()
    names = sorted(p.stem[len("bench_") :] for p in HERE.glob("bench_*.py"))
    if args.quick:
        names = [n for n in names if n in QUICK_ARGS]
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - set(names)
        if unknown:
            ap.error(f"unknown benchmark(s) {sorted(unknown)}; valid: {names}")
        names = [n for n in names if n in wanted]
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {"machine": machine(), "benchmarks": {}}
    for name in names:
        t0 = time.perf_counter()
        extra = QUICK_ARGS.get(name, []) if args.quick else []
        proc = subprocess.run(
            [sys.executable, str(HERE / f"bench_{name}.py"), *extra],
            capture_output=True,
            text=True,
            timeout=args.timeout,
        )
        entry: dict[str, object] = {
            "seconds": round(time.perf_counter() - t0, 1),
            "returncode": proc.returncode,
        }
        if extra:
            entry["args"] = extra
        parsed = _parse_json(proc.stdout)
        if parsed is None:
            entry["error"] = (proc.stderr or proc.stdout)[-2000:]
        else:
            entry["result"] = parsed
        results["benchmarks"][name] = entry  # type: ignore[index]
        print(f"{name}: rc={proc.returncode} in {entry['seconds']} s", file=sys.stderr)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2))
    previous = _previous(args.previous)
    shown = f"{args.previous.parent.name}/{args.previous.name}"
    lines = _headlines(results["benchmarks"], previous, shown)  # type: ignore[arg-type]
    lines += [f"| benchmark | metric | value | previous ({shown}) |", "|---|---|---|---|"]
    for name, entry in results["benchmarks"].items():  # type: ignore[union-attr]
        flat: dict[str, object] = {}
        _flatten("", entry.get("result", {"error": entry.get("error", "")[:80]}), flat)
        before: dict[str, object] = {}
        _flatten("", previous.get(name, {}).get("result", {}), before)
        for k, v in flat.items():
            lines.append(f"| {name} | {k} | {_cell(v)} | {_cell(before.get(k, ''))} |")
    (args.out / "bench.md").write_text("\n".join(lines) + "\n")
    print(json.dumps({"out": str(args.out / "bench.json"), "benchmarks": names}))
    entries: dict[str, dict[str, object]] = results["benchmarks"]  # type: ignore[assignment]
    return 0 if all(e["returncode"] == 0 for e in entries.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
