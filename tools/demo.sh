#!/usr/bin/env bash
# `make demo`: the whole pipeline on the embedded starter model, no downloads.
# synthetic faces → shards → short training → evaluation on held-out samples → inference.
set -euo pipefail
out=${1:-demo_out}
mkdir -p "$out"
start=$(date +%s)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1/4 synth-occ build: synthetic faces from the starter model -> $out/shards"
synth-occ build --source synthetic --model starter --out "$out/shards" \
  --size 128 --limit 600 --per-shard 128 --workers 2 --seed 0 --overwrite

say "2/4 deocc-train: a short two-stage run -> $out/run"
deocc-train --shards "$out/shards" --out "$out/run" --size 128 \
  --max-steps 300 --stage2-steps 60 --ngf 32 --ndf 32 --seed 0

say "3/4 deocc-eval: PSNR/SSIM on the held-out test split -> $out/eval"
deocc-eval --split test --shards "$out/shards" --ckpt "$out/run" --out "$out/eval"

say "4/4 deocc-infer: de-occlude held-out occluded faces -> $out/infer"
synth-occ inspect "$out/shards" --split test --export-occluded "$out/test_photos" --n 4
deocc-infer "$out/test_photos" --ckpt "$out/run" --model starter --out "$out/infer" --side-by-side

say "done in $(( $(date +%s) - start )) s"
echo "shards:        $out/shards (manifest.json)"
echo "training run:  $out/run (checkpoints, TensorBoard logs, sample grids)"
echo "evaluation:    $out/eval/report.html, results.md, results.json"
echo "inference:     $out/infer"
