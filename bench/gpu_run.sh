#!/usr/bin/env bash
# The GPU measurement of issue 3 (bench_train.py on a model of real size) as one command,
# for a device machine: PyTorch, transformers, accelerate, pandas, pyarrow, rich and pyyaml
# installed there, no network, 15 minutes of device time in all.
#
# Here, once, before asking for the machine (downloads what its image lacks: trl, datasets,
# dill and multiprocess, about 2 MB of wheels for Python 3.12, into git-ignored
# bench/_wheels/):
#
#   bash bench/gpu_run.sh --fetch
#
# There (device `run` with carry=["bench/_wheels"], timeout_s=600):
#
#   bash bench/gpu_run.sh
#
# It prints the GPU, then trains the embedded tiny model for one epoch on the GPU (the
# trainer's CUDA and bfloat16 path end to end: sampling, reference, update, evaluation),
# then runs bench_train.py at the Qwen2-0.5B shape, TRL against our torch engine (the
# image has no vLLM), in bfloat16 (--precision auto). Everything goes to $OUT/gpu_run.log
# (or bench/_data/gpu_run.log without $OUT). Sizes can be changed for a dry run on a CPU:
#
#   DEVICE=cpu SHAPE=tiny TOKENS=24 STEPS=2 bash bench/gpu_run.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELS="$ROOT/bench/_wheels"
PY="${PYTHON:-python3}"
WANTED=(trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19)

if [[ "${1:-}" == "--fetch" ]]; then
    "$PY" -m pip download --no-deps --python-version 3.12 --only-binary=:all: \
        -d "$WHEELS" "${WANTED[@]}"
    exit 0
fi

DEVICE="${DEVICE:-cuda}"
SHAPE="${SHAPE:-qwen2-0.5b}"
TOKENS="${TOKENS:-256}"
STEPS="${STEPS:-5}"
LOG_DIR="${OUT:-$ROOT/bench/_data}"
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/gpu_run.log"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
cd "$ROOT"

{
    echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    "$PY" -c "import sys, torch, transformers; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.cuda.is_available(), '| transformers', transformers.__version__)"
    if ! "$PY" -c "import trl, datasets" 2>/dev/null; then
        echo "== installing the carried wheels from $WHEELS"
        "$PY" -m pip install --quiet --no-index --no-deps --find-links "$WHEELS" "${WANTED[@]}"
    fi

    echo "== the trainer on $DEVICE: the tiny model, one epoch"
    started=$SECONDS
    "$PY" -c "import sys; from rewardkit.cli import main; sys.exit(main(sys.argv[1:]))" \
        train --set device="$DEVICE" --set epochs=1 --set train_samples=64 \
        --set test_samples=16 --set engine=torch --output-dir "$(mktemp -d)" --name smoke
    echo "== trainer smoke: $((SECONDS - started)) s"

    echo "== bench_train.py: $SHAPE, $TOKENS new tokens, $STEPS steps, TRL against ours/torch"
    "$PY" bench/bench_train.py --device "$DEVICE" --model-shape "$SHAPE" \
        --max-new-tokens "$TOKENS" --steps "$STEPS" --warmup 1 --repeat 1 --engines torch --json
} 2>&1 | tee "$LOG"
