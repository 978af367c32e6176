"""The training benchmark: its largest-batch search, and a CPU run that says it ran on the CPU."""

from __future__ import annotations

import json

import torch

from tools.bench.bench_train import largest_batch, main


def test_largest_batch_search_on_fake_out_of_memory():
    for limit in (5, 6, 37, 64, 1000):
        tried = []

        def step(b, limit=limit, tried=tried):
            tried.append(b)
            if b > limit:
                raise torch.cuda.OutOfMemoryError(f"{b} > {limit}")
            return float(b)

        assert largest_batch(step, start=5, cap=4096) == limit
        assert len(tried) <= 2 * 10 + 2  # doubling then bisection, not a linear scan
    assert largest_batch(lambda b: float(b), start=5, cap=40) == 40  # capped, all fit
    assert largest_batch(step, start=2000, cap=4096) == 0  # the first batch does not fit


def test_cpu_run_prints_json_and_says_it_is_cpu_only(tmp_path, capsys):
    # main() in this process: a child only added interpreter + torch start-up; 12 samples
    # (1 test, 11 train) are enough for the train steps and 3 loader epochs
    out = tmp_path / "bench.json"
    main(["--device", "cpu", "--size", "64", "--ngf", "8", "--samples", "12", "--steps", "1",
          "--warmup", "0", "--json-out", str(out)])  # fmt: skip
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res == json.loads(out.read_text())
    assert res["device"] == "cpu" and "--device cuda" in res["note"]
    assert res["stage1_img_per_s"] > 0 and res["stage2_img_per_s"] > 0
    assert res["loader_samples_per_s_2_workers"] > 0
