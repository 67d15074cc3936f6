#!/usr/bin/env bash
# Everything the GPU figures of docs/training.md need, in one call on a machine with a GPU:
#   bash benchmarks/gpu_check.sh            (about 6 minutes on an H100)
# 1. training throughput: the authors' way, the grouped path (default on a GPU) and the modules
#    path, the multi-label model, peak GPU memory; the loader alone, warm and cold page cache;
# 2. the grouped path's exactness tests, on the CPU of that machine;
# 3. the grid's time estimate from measured steps on the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" benchmarks/train_throughput.py --device cuda --frames 1000 --modules-too --loader-frames 20000
"$PY" -m pytest -q -p no:warnings tests/test_batched.py -k "float64 or checkpoints"
"$PY" - <<'PY'
import tempfile, sys
sys.path.insert(0, "tests")
from helpers import toy_store
from pattnet.constants import BP4D_AUS
from pattnet.reproduce import estimate, plan
from pattnet.train import TrainConfig
with tempfile.TemporaryDirectory() as d:
    toy_store(f"{d}/store", n=60, aus=BP4D_AUS)
    estimate(plan(f"{d}/store", f"{d}/grid", TrainConfig()))
PY
