#!/usr/bin/env bash
# `make demo`: the whole pipeline on the embedded starter model, no downloads.
# synthetic faces → shards → short two-stage training → evaluation on the held-out
# identities → inference on held-out occluded faces (+ mesh and an expression edit).
set -euo pipefail
out=${1:-demo_out}
mkdir -p "$out"
start=$(date +%s)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1/6 synth-occ build: 800 synthetic faces from the starter model -> $out/shards"
synth-occ build --source synthetic --model starter --out "$out/shards" \
  --size 128 --n-synthetic 800 --per-shard 200 --workers 2 --seed 0 --test-fraction 0.1 --overwrite
synth-occ verify "$out/shards"
synth-occ inspect "$out/shards" --grid "$out/shards_grid.png" --n 8

say "2/6 deocc-train: a short two-stage run (1,200 steps, the last 200 in stage 2) -> $out/run"
rm -rf "$out/run"
deocc-train --shards "$out/shards" --out "$out/run" --max-steps 1200 --stage2-steps 200 \
  --ngf 32 --ndf 32 --workers 1 --seed 0 --val-every 300 --checkpoint-every 300

say "3/6 deocc-eval: PSNR/SSIM per region on the held-out test identities -> $out/eval"
deocc-eval --shards "$out/shards" --split test --ckpt "$out/run" --name demo \
  --baselines input,telea --out "$out/eval"

say "4/6 deocc-infer: de-occlude held-out occluded faces (+ mesh) -> $out/infer"
synth-occ inspect "$out/shards" --split test --export-occluded "$out/test_photos" --n 4
deocc-infer "$out/test_photos" --ckpt "$out/run" --out "$out/infer" --landmarks-from pts --mesh --side-by-side

say "5/6 deocc-infer --expression smile: the paper's attribute edit -> $out/infer_smile"
deocc-infer "$out/test_photos" --ckpt "$out/run" --out "$out/infer_smile" --landmarks-from pts --expression smile

say "6/6 deocc-infer with the shipped default model (no --ckpt; trained on real faces) -> $out/infer_default"
deocc-infer "$out/test_photos" --out "$out/infer_default" --landmarks-from pts --grid 4

say "done in $(( $(date +%s) - start )) s"
echo "shards:        $out/shards (manifest.json; sample grid $out/shards_grid.png)"
echo "training run:  $out/run (checkpoints/, samples/, tb/ for TensorBoard, log.jsonl)"
echo "evaluation:    $out/eval/report.html, results.md, results.json, samples.png"
echo "inference:     $out/infer (*_deoccluded.png, *_side_by_side.png, *.obj), $out/infer_smile"
echo "default model: $out/infer_default (grid.png: input | the model's occlusion mask | output)"
echo "This is the demo model on synthetic faces; see README 'Use with real data' for the paper-scale run."
