#!/usr/bin/env bash
# The GPU check: one command, from a clean copy of the tree, on one H100/H200, in about 8 minutes.
#
#   bash benchmarks/gpu_check.sh                 # on the GPU machine: install, test, measure, write rows
#   bash benchmarks/gpu_check.sh --fetch-wheels  # beforehand, where PyPI is reachable: the wheels it lacks
#   bash benchmarks/gpu_check.sh --cpu-smoke     # here: every step on a tiny shape, on the CPU
#   bash benchmarks/gpu_check.sh --dry-run       # print the steps without running them
#
# Steps (each under its own time limit, so one that hangs cannot eat the others' time):
#   1. environment: a venv over the machine's own python3 (--system-site-packages: its torch,
#      transformers and accelerate), the wheels in .whl/ when there are any (the GPU machine
#      reaches no package index: fetch them first with --fetch-wheels and carry .whl), then this
#      project without dependencies; every dependency is then imported, and a missing one is
#      named with the fix;
#   2. the requires_gpu tests (tests/test_gpu.py, tests/test_fsdp.py);
#   3. ModernBERT-large's DAPT shape, random init, 8192 x 4, bf16, sparse head: sdpa and (when
#      flash-attn is installed) flash_attention_2, gradient checkpointing on and off -- s/step,
#      tokens/s, the memory preflight beside CUDA's measured peak (benchmarks/gpu_check.py);
#   4. TAPT at 512, packed, batch 32, ours beside the reference (benchmarks/train_throughput.py);
#   5. the rows, under the card's name and the date, appended to benchmarks/RESULTS.md (or
#      --results FILE) and, when $OUT is set (the device tool), copied to $OUT/gpu_check.md with
#      the whole log in $OUT/gpu_check.log: paste that section into RESULTS.md here.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=gpu
INSTALL=""
DRY=0
RESULTS=""
VENV=${SEC_CYBERT_GPU_VENV:-/tmp/sec-cybert-gpu-venv}
# The whole check's budget in seconds: a step gets its own limit or what is left, whichever is less.
BUDGET=${GPU_CHECK_SECONDS:-480}
PYTHON=${PYTHON:-python3}
# Versions that work with this tree (what its CI venv holds); the GPU image has the rest.
WHEELS=(datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 structlog==26.1.0 cattrs==26.2.1 datasketch==2.0.0)

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
        --cpu-smoke) MODE=cpu ;;
        --dry-run) DRY=1 ;;
        --no-install) INSTALL=0 ;;
        --install) INSTALL=1 ;;
        --results) RESULTS=$2; shift ;;
        --fetch-wheels) MODE=fetch ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

# On the GPU machine it installs; a CPU smoke run uses the python it was started with.
[ -z "$INSTALL" ] && { [ "$MODE" = cpu ] && INSTALL=0 || INSTALL=1; }
DEVICE=$([ "$MODE" = cpu ] && echo cpu || echo cuda)

if [ "$MODE" = fetch ]; then
    # The GPU machine's python is 3.12 on x86-64 (/work/.library/device/KINDS.md).
    WHEEL_DIR=${WHEEL_DIR:-$ROOT/.whl}
    mkdir -p "$WHEEL_DIR"
    if [ "$WHEEL_DIR" = "$ROOT/.whl" ]; then  # carried, not committed
        grep -qx '/.whl/' "$ROOT/.git/info/exclude" 2>/dev/null || echo '/.whl/' >>"$ROOT/.git/info/exclude"
    fi
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$WHEEL_DIR" "${WHEELS[@]}" || exit 1
    echo "wheels in $WHEEL_DIR: name .whl in the device run's carry"
    exit 0
fi

# Smoke runs never write to the real results file unless told to.
if [ -z "$RESULTS" ]; then
    if [ "$MODE" = cpu ]; then RESULTS=$(mktemp -t gpu-check-smoke.XXXXXX.md); else RESULTS=$ROOT/benchmarks/RESULTS.md; fi
fi
WORK=$(mktemp -d -t gpu-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT  # the rows are in $RESULTS (and $OUT); the log too when $OUT is set
LOG=$WORK/gpu_check.log
STATUS=0

step() {  # step SECONDS DESCRIPTION COMMAND...: run under a time limit, log it, remember a failure
    local limit=$1 what=$2
    shift 2
    local left=$((BUDGET - SECONDS))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 10 ]; then
        echo "== $what: skipped, the ${BUDGET}s budget is spent" | tee -a "$LOG"
        STATUS=1; FAILED+=("$what (no time left)")
        return 1
    fi
    echo "== $what (limit ${limit}s): $*" | tee -a "$LOG"
    [ "$DRY" = 1 ] && return 0
    local started=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    echo "== $what: exit $rc after $((SECONDS - started))s" | tee -a "$LOG"
    if [ "$rc" -ne 0 ]; then STATUS=1; FAILED+=("$what (exit $rc)"); fi
    return "$rc"
}
FAILED=()

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 PYTHONHASHSEED=0
export SEC_CYBERT_CACHE=$WORK/cache
export GPU_CHECK_ENVIRONMENT=$WORK/environment.tsv GPU_CHECK_DEVICE=$DEVICE
cd "$ROOT" || exit 1

# 1. Environment.
if [ "$INSTALL" = 1 ]; then
    step 30 "venv over the machine's python" "$PYTHON" -m venv --system-site-packages "$VENV" || exit 1
    [ "$DRY" = 1 ] || . "$VENV/bin/activate"
    if compgen -G "$ROOT/.whl/*.whl" >/dev/null; then
        step 60 "carried wheels" python -m pip install -q --no-index --no-deps --no-compile "$ROOT"/.whl/*.whl || exit 1
    fi
    step 60 "this project, without dependencies" \
        python -m pip install -q --no-index --no-deps --no-build-isolation -e "$ROOT" || exit 1
fi
step 45 "every dependency imports" python - <<'EOF' || { echo "fix: bash benchmarks/gpu_check.sh --fetch-wheels where PyPI is reachable, carry .whl" | tee -a "$LOG"; exit 1; }
import importlib, sys
names = ["torch", "transformers", "accelerate", "datasets", "tokenizers", "safetensors", "attrs", "cattrs",
         "structlog", "pluggy", "yaml", "click", "sklearn", "numpy", "tqdm", "datasketch", "huggingface_hub",
         "jinja2", "pytest", "sec_cybert"]
missing = []
for name in names:
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '')}")
    except Exception as exc:  # an ImportError, or a version clash surfacing at import
        missing.append(f"{name} ({type(exc).__name__}: {exc})")
import torch
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
if missing:
    sys.exit("missing or broken: " + "; ".join(missing))
# The card and the versions for the rows' heading, read here once (each python start costs seconds).
import os, transformers
sys.path.insert(0, "benchmarks")
from gpu_check import card_name
with open(os.environ["GPU_CHECK_ENVIRONMENT"], "w") as out:
    print(card_name(os.environ["GPU_CHECK_DEVICE"]), torch.__version__, transformers.__version__, sep="\t", file=out)
EOF

# 2. The GPU tests (skipped, and counted as such, on a machine without one).
step 120 "requires_gpu tests" python -m pytest -q -p no:cacheprovider -m requires_gpu -rs tests/test_gpu.py tests/test_fsdp.py

# 3. and 4. Measurements.
ROWS=$WORK/rows.md
if [ "$MODE" = cpu ]; then
    step 240 "DAPT shape: preflight vs measured (tiny, CPU)" python benchmarks/gpu_check.py --cpu-smoke --results "$ROWS"
    step 180 "TAPT at 128 packed (tiny, CPU)" python benchmarks/train_throughput.py --size tiny --seq-len 128 \
        --batch 8 --steps 1 --warmup 1 --paragraphs 64 --device cpu --json "$WORK/tapt.json"
else
    step 150 "DAPT shape: ModernBERT-large 4 x 8192, preflight vs measured" python benchmarks/gpu_check.py --results "$ROWS"
    ATTN=sdpa
    python -c "import flash_attn" 2>/dev/null && ATTN=flash_attention_2
    step 120 "TAPT at 512 packed, batch 32 ($ATTN)" python benchmarks/train_throughput.py --size large --seq-len 512 \
        --batch 32 --bf16 --attn "$ATTN" --steps 10 --warmup 3 --json "$WORK/tapt.json"
fi
[ "$DRY" = 1 ] && { echo "dry run: nothing ran; results would go to $RESULTS"; exit 0; }

# 5. The rows.
IFS=$'\t' read -r CARD TORCH_VERSION TRANSFORMERS_VERSION <"$GPU_CHECK_ENVIRONMENT" || CARD=unknown
SECTION=$WORK/gpu_check.md
{
    echo
    echo "### GPU check: $CARD, $(date -u +%Y-%m-%d)"
    echo
    echo "\`bash benchmarks/gpu_check.sh\`$([ "$MODE" = cpu ] && echo ' --cpu-smoke (a tiny shape on the CPU: checks the script, not a card)');" \
        "torch ${TORCH_VERSION:-?}, transformers ${TRANSFORMERS_VERSION:-?}."
    echo "Tests: $(grep -E '^[0-9]+ (passed|failed|skipped)|passed|skipped' "$LOG" | grep -E ' in [0-9.]+s' | tail -1 || echo 'no summary')."
    [ ${#FAILED[@]} -gt 0 ] && echo "Failed steps: ${FAILED[*]}."
    echo
    [ -f "$ROWS" ] && cat "$ROWS"
    echo
    if [ -f "$WORK/tapt.json" ]; then
        grep -E '^\|( (setting|reference|ours)|---)' "$LOG" | grep -v 'preflight' | awk '!seen[$0]++'
    fi
} >"$SECTION"
cat "$SECTION" >>"$RESULTS"
echo "rows appended to $RESULTS"
if [ -n "${OUT:-}" ]; then
    cp "$SECTION" "$OUT/gpu_check.md"
    cp "$LOG" "$OUT/gpu_check.log"
fi
exit "$STATUS"
