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

# the shipped occlusion segmenter (assets/segmenter.safetensors + card) and its RESULTS section;
# ~45 min of training + ~10 min of evaluation on 2 shared CPU cores
SEG_OUT ?= segmenter_out
train-segmenter: install
	$(BIN)/train-segmenter crops --faces-bulk ../shared/data/faces_bulk --out $(SEG_OUT)/faces128.npz
	nice -n 10 $(BIN)/train-segmenter train --faces $(SEG_OUT)/faces128.npz --out $(SEG_OUT)/run --steps 1600
	$(BIN)/train-segmenter export --run $(SEG_OUT)/run --out assets/segmenter.safetensors
	$(BIN)/train-segmenter eval --faces $(SEG_OUT)/faces128.npz --segmenter assets/segmenter.safetensors \
		--out $(SEG_OUT)/eval --results docs/RESULTS.md --card assets/segmenter.md

# BENCH_ARGS=--quick: a smoke run of the headline benchmarks only (infer, render, synth)
bench: install
	$(BIN)/python tools/bench/run_all.py --out bench_out $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
