#!/usr/bin/env bash
# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
# Prepare the GPU benchmark (benchmarks/gpu.sh) for a GPU machine without network access. Run it in
# the repository root of a machine with access to the package index:
#   1. download wheels (Python 3.12, x86-64) of the packages the GPU machine lacks into .whl/;
#   2. copy the NUDT-SIRST folder into .gpu_data/NUDT-SIRST;
#   3. ignore both through .git/info/exclude, so that they stay out of commits;
#   4. measure the working tree (tracked + untracked-not-ignored files) + .whl + .gpu_data, the
#      files to copy to the GPU machine, and fail over 64 MiB.
# Then copy the checkout with .whl and .gpu_data to the GPU machine and run: bash benchmarks/gpu.sh
#   bash benchmarks/prepare_gpu.sh [NUDT-SIRST folder]   (default: $IRSAM_SHARED_DATA/NUDT-SIRST)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DATA_SRC=${1:-${IRSAM_SHARED_DATA:-../shared/data}/NUDT-SIRST}
LIMIT_MIB=64

# Packages missing on the GPU machine (its image has torch, lightning, torchmetrics, numpy, scipy,
# scikit-image, opencv-python-headless, PyYAML, packaging, rich, tifffile, matplotlib, tensorboard,
# timm, peft, onnx): the project's needs, each with its own missing dependencies (installed there
# with --no-deps, so every one is named here). Versions: the ones installed here, else the pin.
PACKAGES=(
  hydra-core==1.3.2 omegaconf==2.3.0 antlr4-python3-runtime==4.9.3  # configs
  rootutils==1.0.7 python-dotenv==1.0.1                              # train.py's project root
  segment-anything==1.0                                              # SAM / MobileSAM layouts
  pywavelets==1.8.0                                                  # WPMD wavelets
  albumentations==2.0.8 albucore==0.0.24 stringzilla==3.12.5 simsimd==6.2.1  # augmentation
  pydantic==2.11.7 pydantic-core==2.33.2 annotated-types==0.7.0 typing-inspection==0.4.1
  typing-extensions==4.14.1                                          # pydantic needs a recent one
)

installed_version() {  # the version of $1 in this interpreter, or nothing
  "$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$1"
}

mkdir -p .whl .gpu_data
for spec in "${PACKAGES[@]}"; do
  name=${spec%%==*}
  version=$(installed_version "$name")
  spec="$name==${version:-${spec#*==}}"
  if ls .whl | grep -qi "^$(echo "$name" | tr '-' '_')-${version:-${spec#*==}}-"; then continue; fi
  if ! "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform manylinux1_x86_64 -d .whl "$spec" 2>/dev/null; then
    # sdist-only, pure-Python packages (antlr4-python3-runtime 4.9.3): build the wheel here
    "$PY" -m pip wheel -q --no-deps -w .whl "$spec"
  fi
done
for wheel in .whl/*.whl; do  # a compiled wheel must be for CPython 3.12 on x86-64
  case $wheel in *-py3-none-any.whl | *-py2.py3-none-any.whl | *cp312*x86_64*.whl) ;;
    *) echo "wrong wheel for the GPU machine (Python 3.12, x86-64): $wheel" >&2; exit 1 ;; esac
done

if [ ! -d .gpu_data/NUDT-SIRST/images ]; then
  [ -d "$DATA_SRC/images" ] || { echo "no NUDT-SIRST at $DATA_SRC (give its folder)" >&2; exit 1; }
  cp -r "$DATA_SRC" .gpu_data/NUDT-SIRST
fi

exclude="$(git rev-parse --git-common-dir)/info/exclude"
mkdir -p "$(dirname "$exclude")"
for entry in /.whl/ /.gpu_data/; do
  grep -qxF "$entry" "$exclude" 2>/dev/null || echo "$entry" >>"$exclude"
done

tree_bytes=$(git ls-files -z --cached --others --exclude-standard \
  | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
wheel_bytes=$(du -sb .whl | cut -f1)
data_bytes=$(du -sb .gpu_data | cut -f1)
total=$((tree_bytes + wheel_bytes + data_bytes))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
echo "to copy: working tree $(mib "$tree_bytes") MiB + .whl $(mib "$wheel_bytes") MiB" \
  "($(ls .whl | wc -l) wheels) + .gpu_data $(mib "$data_bytes") MiB = $(mib "$total") MiB" \
  "(limit $LIMIT_MIB MiB)"
if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "over the $LIMIT_MIB MiB limit: remove untracked files or large wheels first" >&2
  exit 1
fi
echo 'next: copy the checkout with .whl and .gpu_data to the GPU machine, run bash benchmarks/gpu.sh'
