#!/usr/bin/env bash
# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
# GPU benchmark of irsam in <= 8 minutes of wall time (every step has a hard time limit), all output
# in one folder: $OUT when set, else the argument, else benchmarks/out/gpu-<time>. Steps, for
# irsam_tiny at 512 -> 1024 unless said:
#   A  bf16 eager: training + inference batch sweep, and the data loader (NUDT-SIRST, 8/16 workers,
#      cached and not) against the training step at the best batch;
#   C  largest training batch (bf16) of irsam_tiny and irsam_vit_b at 1024;
#   D  from scratch: python train.py experiment=irsam_nudt (random init, bf16-mixed, a 2 min 40 s
#      budget: the rest of the 8 minutes goes to A-C), val IoU per epoch, then the test metrics of
#      the validation-selected checkpoint;
#   B  bf16 with torch.compile at batch 64 (last: compilation is the slowest step).
# A GPU machine without network access needs the wheels and the data that
# bash benchmarks/prepare_gpu.sh puts into .whl/ and .gpu_data/ (copy both along with the checkout).
# On the GPU machine: bash benchmarks/gpu.sh
# Check on a CPU: bash benchmarks/gpu.sh --smoke [DIR]   (tiny sizes, fp32, compile off, no install
# when the packages import already). Results: DIR/summary.md, DIR/gpu.log, DIR/details.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
SMOKE=0
DEST=""
for arg in "$@"; do
  case $arg in
    --smoke) SMOKE=1 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "unknown option $arg (use --smoke or a folder)" >&2; exit 2 ;;
    *) DEST=$arg ;;
  esac
done
DEST=${DEST:-${OUT:-benchmarks/out/gpu-$(date -u +%Y%m%d-%H%M%S)}}
DETAILS=$DEST/details
mkdir -p "$DETAILS"
DEST=$(cd "$DEST" && pwd)
DETAILS=$DEST/details
exec > >(tee -a "$DEST/gpu.log") 2>&1
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1
START=$(date +%s)
echo "gpu.sh: smoke=$SMOKE output=$DEST start=$(date -u '+%F %T UTC')"

# --- packages: install the carried wheels unless everything imports already ---------------------
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
NEEDED="import hydra, omegaconf, rootutils, segment_anything, pywt, albumentations, irsam, torch
print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if ! "$PY" -c "$NEEDED" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "packages missing and no .whl/: run benchmarks/prepare_gpu.sh" >&2; exit 1; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/irsam-site .whl/*.whl || exit 1
  export PYTHONPATH=$PWD:/tmp/irsam-site${PYTHONPATH:+:$PYTHONPATH}
  "$PY" -c "$NEEDED" || exit 1
fi

# --- settings --------------------------------------------------------------------------------
if [ "$SMOKE" = 1 ]; then
  PRECISION=fp32; DEVICE=cpu; INPUT=64; INTERNAL=64; SWEEP=1,2; COMPILE_BATCH=2; COMPILE=off
  REPEATS=1; WARMUP=0; WORKERS=0; DATA_EPOCHS=1; MAX_LIMIT=1; THREADS=1; TRAIN_TIME=00:00:00:30
  TIMEOUT_A=150; TIMEOUT_C=150; TIMEOUT_D=200; TIMEOUT_B=150
  DATA=$(mktemp -d)/smoke_data  # a tiny NUDT-SIRST-layout dataset (outside the results)
  "$PY" -c "from irsam.data import write_synthetic_dataset as w; w('$DATA', num_trainval=8, num_test=4, native_size=64)"
  TRAIN_EXTRA=(trainer=cpu dataset.loader_size=64 model.net.encoder_size=64 dataset.num_workers=0
    dataset.pin_memory=false dataset.persistent_workers=false trainer.max_epochs=1)
else  # worst case: about 15 s setup + 75 + 2 x 50 + 205 + 80 = 475 s
  PRECISION=bf16; DEVICE=cuda; INPUT=512; INTERNAL=1024; SWEEP=1,16,64,128; COMPILE_BATCH=64
  COMPILE=on; REPEATS=10; WARMUP=3; WORKERS=8,16; DATA_EPOCHS=1; MAX_LIMIT=0; THREADS=0
  TRAIN_TIME=00:00:02:40; TIMEOUT_A=75; TIMEOUT_C=50; TIMEOUT_D=205; TIMEOUT_B=80
  DATA=${IRSAM_GPU_DATA:-$PWD/.gpu_data/NUDT-SIRST}
  TRAIN_EXTRA=(trainer.precision=bf16-mixed dataset.num_workers=8)
fi
[ -d "$DATA/images" ] || { echo "no dataset at $DATA (prepare_gpu.sh copies it)" >&2; exit 1; }
BENCH=("$PY" benchmarks/benchmark.py --device "$DEVICE" --threads "$THREADS" --input-size "$INPUT"
  --image-size "$INTERNAL" --precision "$PRECISION" --repeats "$REPEATS" --warmup "$WARMUP")
declare -A STATUS

step() {  # step NAME SECONDS COMMAND...: run with a hard time limit, record the exit status
  local name=$1 limit=$2
  shift 2
  echo "=== step $name (limit ${limit}s, at $(( $(date +%s) - START ))s): $*"
  timeout --kill-after=10 "$limit" "$@"
  STATUS[$name]=$?
  echo "=== step $name: exit ${STATUS[$name]} (124 = time limit)"
}

step A_sweep_data "$TIMEOUT_A" "${BENCH[@]}" --batch-sizes "$SWEEP" --compile off \
  --sections train,infer,data --data-root "$DATA" --workers "$WORKERS" --cache off,on \
  --data-epochs "$DATA_EPOCHS" --out "$DETAILS/A_sweep_data"
for model in irsam_tiny irsam_vit_b; do
  step "C_max_batch_$model" "$TIMEOUT_C" "${BENCH[@]}" --model "$model" --sections train \
    --batch-sizes 1 --max-batch --max-batch-limit "$MAX_LIMIT" --repeats 1 --warmup 0 \
    --out "$DETAILS/C_max_batch_$model"
done
step D_train_nudt "$TIMEOUT_D" "$PY" train.py experiment=irsam_nudt "dataset.root=$DATA" \
  model.net.checkpoint=null "trainer.max_time=$TRAIN_TIME" logger=csv extras.print_config=false \
  trainer.enable_progress_bar=false "paths.log_dir=$DETAILS/logs" "hydra.run.dir=$DETAILS/D_train_nudt" \
  "${TRAIN_EXTRA[@]}"
step B_compile "$TIMEOUT_B" "${BENCH[@]}" --batch-sizes "$COMPILE_BATCH" --compile "$COMPILE" \
  --sections train,infer --out "$DETAILS/B_compile"

# --- summary ---------------------------------------------------------------------------------
STATUS_TEXT=$(for k in "${!STATUS[@]}"; do echo "$k=${STATUS[$k]}"; done | sort | tr '\n' ' ')
"$PY" - "$DETAILS" "$DEST/summary.md" "$STATUS_TEXT" "$(( $(date +%s) - START ))" <<'PYEOF'
import csv, json, sys
from pathlib import Path

details, target, status, seconds = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = [f"# GPU benchmark summary\n", f"- step exit codes (124 = time limit): {status}",
         f"- wall time: {seconds} s\n"]
for report in sorted(details.glob("*/benchmark.json")):
    data = json.loads(report.read_text())
    env = data["environment"]
    lines.append(f"## {report.parent.name} ({env['gpu'] or env['cpu']}, torch {env['torch']})\n")
    lines.append((report.parent / "benchmark.md").read_text().split("\n## ", 1)[-1].join(["## ", ""]))
runs = sorted(details.glob("D_train_nudt/csv/*/metrics.csv"))
if runs:
    rows = list(csv.DictReader(runs[-1].open()))
    lines.append("## From-scratch NUDT-SIRST run (experiment=irsam_nudt, random init)\n")
    lines.append("| epoch | val/IoU | val/nIoU | val/Pd | val/Fa |\n|---|---|---|---|---|")
    for row in rows:
        if row.get("val/IoU"):
            lines.append(f"| {row['epoch']} | {row['val/IoU']} | {row.get('val/nIoU', '')} | "
                         f"{row.get('val/Pd', '')} | {row.get('val/Fa', '')} |")
    test = {k: v for row in rows for k, v in row.items() if k.startswith("test/") and v}
    lines.append("\nTest metrics of the selected checkpoint: "
                 + (", ".join(f"{k}={v}" for k, v in sorted(test.items())) or "none logged"))
log = details / "D_train_nudt" / "irsam_nudt.log"
if log.is_file():
    best = [line for line in log.read_text().splitlines() if "Best checkpoint" in line]
    lines.append(f"\n{best[-1].split('] - ', 1)[-1] if best else 'no best checkpoint line'}\n")
target.write_text("\n".join(lines) + "\n")
print(target.read_text())
PYEOF
tar czf "$DEST/details.tar.gz" --exclude='*.ckpt' --exclude='samples' -C "$DEST" details
if [ -n "${OUT:-}" ] && [ "$DEST" = "$(cd "$OUT" && pwd)" ]; then
  rm -rf "$DETAILS"  # $OUT keeps the three result files: summary.md, gpu.log, details.tar.gz
fi
echo "gpu.sh done in $(( $(date +%s) - START )) s: $DEST/summary.md, $DEST/details.tar.gz"
for code in "${STATUS[@]}"; do [ "$code" = 0 ] || exit 1; done  # a failed or cut step fails the benchmark
