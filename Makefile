# Two commands for a user: `make demo` and `make test`. Both create .venv and install
# everything the project needs; nothing is installed by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch first: 2.13.0 is the CPU wheel on our build machines; on a CUDA machine PyPI's
# build of the same version brings CUDA. Elsewhere, for a small CPU-only install, run e.g.
#   make demo TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC     ?= torch==2.13.0
TORCH_PIP_ARGS ?=
DEMO_OUT ?= demo_out

.PHONY: demo test install bench experiment train-default train-segmenter clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

demo: install
	PATH="$(abspath $(BIN)):$$PATH" bash tools/demo.sh "$(DEMO_OUT)"

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

experiment: install
	$(BIN)/python tools/experiment_small.py --out experiment_out

# the shipped default model (assets/default_model.safetensors + card) and its RESULTS section;
# ~2 h on 2 CPU cores (real photos from ../shared/data)
train-default: install
	$(BIN)/python -m tools.train_default --out train_default_out

# the shipped occlusion segmenter (assets/segmenter.safetensors + card) and its RESULTS section:
# the first segmenter (1,600 steps from scratch, procedural occluders), a fine-tune from it with
# deocc's 3D occluders (synth-occ shards of train photos; test photos for the evaluation) and
# half of CelebAMask-HQ's real glasses wearers, then the shipped fine-tune that adds the real
# face masks of with_mask / rwmfd_part1 with pseudo-labels seeded by that fine-tune's m̂;
# ~70 min of training, ~15 min of shards and labels, ~5 min of evaluation on 2 CPU cores. The shipped fine-tune
# started from the previously shipped weights (commit e605a20), which the first train makes
# up to its learning-rate schedule (re-targeted during that run).
SEG_OUT ?= segmenter_out
SEG_OCC = --source folder --model deocc-face --size 128 --per-face 2 --per-shard 256 --workers 1 \
	--seed 11 --test-fraction 0
train-segmenter: install
	$(BIN)/train-segmenter crops --faces-bulk ../shared/data/faces_bulk --out $(SEG_OUT)/faces128.npz
	nice -n 10 $(BIN)/train-segmenter train --faces $(SEG_OUT)/faces128.npz --out $(SEG_OUT)/run --steps 1600
	$(BIN)/train-segmenter occ-photos --faces $(SEG_OUT)/faces128.npz --split train --n 150 \
		--out $(SEG_OUT)/occ_photos_train
	$(BIN)/train-segmenter occ-photos --faces $(SEG_OUT)/faces128.npz --split test --n 60 \
		--out $(SEG_OUT)/occ_photos_test
	nice -n 10 $(BIN)/synth-occ build $(SEG_OCC) --root $(SEG_OUT)/occ_photos_train \
		--out $(SEG_OUT)/occ_train
	nice -n 10 $(BIN)/synth-occ build $(SEG_OCC) --root $(SEG_OUT)/occ_photos_test \
		--out $(SEG_OUT)/occ_test
	nice -n 10 $(BIN)/train-segmenter train --faces $(SEG_OUT)/faces128.npz --out $(SEG_OUT)/run_ft \
		--init $(SEG_OUT)/run/latest.pt --steps 900 --lr 1.5e-4 --occ-shards $(SEG_OUT)/occ_train \
		--occ-share 0.125 --glasses-share 0.125
	$(BIN)/train-segmenter export --run $(SEG_OUT)/run_ft --out $(SEG_OUT)/ft.safetensors
	nice -n 10 $(BIN)/train-segmenter pseudo --segmenter $(SEG_OUT)/ft.safetensors \
		--out $(SEG_OUT)/real_masks.npz --sheet $(SEG_OUT)/real_masks.png
	nice -n 10 $(BIN)/train-segmenter train --faces $(SEG_OUT)/faces128.npz --out $(SEG_OUT)/run_real \
		--init $(SEG_OUT)/run_ft/latest.pt --steps 900 --lr 1.5e-4 --occ-shards $(SEG_OUT)/occ_train \
		--occ-share 0.125 --glasses-share 0.125 --real-masks $(SEG_OUT)/real_masks.npz --real-share 0.25
	$(BIN)/train-segmenter export --run $(SEG_OUT)/run_real --out assets/segmenter.safetensors \
		--note "Fine-tuned from $(SEG_OUT)/run_ft, itself fine-tuned from the first segmenter."
	$(BIN)/train-segmenter eval --faces $(SEG_OUT)/faces128.npz --segmenter assets/segmenter.safetensors \
		--occ-shards $(SEG_OUT)/occ_test --out $(SEG_OUT)/eval --results docs/RESULTS.md \
		--card assets/segmenter.md --real-masks $(SEG_OUT)/real_masks.npz

# BENCH_ARGS=--quick: a smoke run of the headline benchmarks only (infer, render, synth)
bench: install
	$(BIN)/python tools/bench/run_all.py --out bench_out $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
