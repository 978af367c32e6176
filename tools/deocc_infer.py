"""deocc-infer: photos in, de-occluded photos out (plus crops, meshes and expression edits)."""
from __future__ import annotations

from pathlib import Path

import typer

from tools._cli import VERBOSE_OPTION, VERSION_OPTION, make_app, progress_bar, run_app, setup_logging, stdout, writable_dir

app = make_app("deocc-infer", "De-occlude faces in photos with a trained checkpoint (detect, fit the 3DMM, render, run G, paste back).", group=False)


@app.command()
def run(
    inputs: list[Path] = typer.Argument(..., exists=True, help="Images and/or folders of images."),
    ckpt: Path = typer.Option(..., "--ckpt", exists=True, help="Checkpoint file or run folder (best.pt, else latest.pt)."),
    out: Path = typer.Option(Path("infer_out"), "--out", help="Output folder."),
    model: str = typer.Option(None, "--model", help="3DMM the shards were built with [default: starter when the checkpoint says so]."),
    landmarks_from: str = typer.Option("detector", "--landmarks-from", help="detector | pts | mat (sidecar files beside each image)."),
    backend: str = typer.Option("dlib", "--backend", help="Landmark detector: dlib (offline) | fan (deocc[fan] + local weights)."),
    mesh: bool = typer.Option(False, "--mesh", help="Also write the fitted mesh coloured by the de-occluded face (OBJ)."),
    expression: str = typer.Option("keep", "--expression", help="keep | neutral | smile | open | surprise | FILE.json ({mode: std units})."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Also write input | output side by side."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    version: bool = VERSION_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """De-occlude every face in the given photos."""
    setup_logging(verbose)
    import cv2
    import numpy as np

    from deocc_core.errors import ConfigError, InputError
    from deocc_core.infer.pipeline import deocclude_face, paste_back, vertex_colors
    from deocc_core.landmarks.readers import find_annotation, read_annotation
    from deocc_core.morphable.model import load_model
    from deocc_core.render import write_obj
    from deocc_core.synth.sources import IMAGE_SUFFIXES, SkipInput, read_image
    from deocc_core.train.trainer import load_generator, resolve_device

    if landmarks_from not in ("detector", "pts", "mat"):
        raise typer.BadParameter(f"--landmarks-from must be detector, pts or mat, got {landmarks_from!r}")
    writable_dir(out)
    images = []
    for p in inputs:
        images += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and not q.stem.endswith("_gt")) if p.is_dir() else [p]
    if not images:
        raise InputError(f"{', '.join(map(str, inputs))}: no images found")
    dev = resolve_device(device)
    G, tcfg, info = load_generator(ckpt, dev)
    data_model = info.get("data_model", {})
    if model is None:
        if data_model.get("name") not in (None, "deocc-starter"):
            raise ConfigError(f"{ckpt}: trained on shards built with model {data_model['name']!r}: pass --model PATH")
        model = "starter"
    m = load_model(model)
    if data_model.get("sha256") and data_model["sha256"] != m.sha256:
        stdout.print(f"[yellow]warning: {model} differs from the model the training shards used ({data_model.get('name')})[/yellow]")
    detector = None
    if landmarks_from == "detector":
        from deocc_core.landmarks.detect import make_detector

        detector = make_detector(backend)
    n_faces, problems = 0, []
    with progress_bar("deocc-infer", total=len(images), unit="img") as advance:
        for path in images:
            try:
                photo = read_image(path)
            except SkipInput:
                problems.append(f"{path}: unreadable image")
                advance()
                continue
            if detector is None:
                ann = path.with_suffix("." + landmarks_from)
                ann = ann if ann.is_file() else find_annotation(path)
                if ann is None:
                    problems.append(f"{path}: no .{landmarks_from} landmarks beside it")
                    advance()
                    continue
                faces = [read_annotation(ann)]
            else:
                faces = [f.landmarks for f in detector.detect(photo)]
            if not faces:
                problems.append(f"{path}: no face found")
            result = photo
            for k, lm in enumerate(faces):
                try:
                    fo = deocclude_face(photo, lm, G, tcfg, m, dev, expression)
                except InputError as e:
                    problems.append(f"{path} face {k}: {e}")
                    continue
                result = paste_back(result, fo.output, fo.inverse, fo.face_mask)
                stem = out / f"{path.stem}_face{k}"
                cv2.imwrite(f"{stem}_crop.png", fo.crop[:, :, ::-1])
                cv2.imwrite(f"{stem}_render.png", fo.render[:, :, ::-1])
                cv2.imwrite(f"{stem}_output.png", fo.output[:, :, ::-1])
                if mesh:
                    rr = fo.render_result
                    cols = vertex_colors(rr.projected, rr.visible, fo.output, m.albedo())
                    write_obj(f"{stem}.obj", m.vertices(fo.fit.params.id_coef, fo.fit.params.exp_coef), m.triangles, cols)
                n_faces += 1
            cv2.imwrite(str(out / f"{path.stem}_deoccluded.png"), result[:, :, ::-1])
            if side_by_side:
                cv2.imwrite(str(out / f"{path.stem}_side_by_side.png"), np.concatenate([photo, result], 1)[:, :, ::-1])
            advance()
    stdout.print(f"{n_faces} face(s) in {len(images)} image(s) → {out}")
    for p in problems:
        stdout.print(f"[yellow]skipped: {p}[/yellow]", highlight=False)


def main() -> None:
    run_app(app, "deocc-infer")


if __name__ == "__main__":
    main()
