#!/usr/bin/env bash
# The GPU check, one script (issue "On a GPU"): on a machine with a CUDA device, within ~8 minutes,
#   1. builds the CUDA variant of the kernels,
#   2. runs the CUDA-vs-CPU parity tests of every op (pytest -m cuda; a skipped test counts as a failure),
#   3. runs python -m kernels.bench on CUDA (JSON into $OUT_DIR/bench_cuda.json),
#   4. runs a tiny minivoc pipeline with device=cuda end to end (every point recipe, then the comparison)
#      and prints each stage's wall time from Snakemake's benchmark files.
# Any failure ends it with one line "gpu_check: FAILED <step>: <why>" and a non-zero exit.
#
#   bash benchmarks/gpu_check.sh                      # on the GPU machine, from the repository root
#   WSSS_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh  # rehearsal on the CPU: steps 1-2 skipped, 3-4 on the CPU
#
# Environment: OUT_DIR (default results/gpu_check), PY (default .venv/bin/python, else python3).
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE="${WSSS_CHECK_DEVICE:-cuda}"
OUT_DIR="${OUT_DIR:-results/gpu_check}"
PY="${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
if [[ "$PY" == */* ]]; then PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"; fi
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"

fail() { echo "gpu_check: FAILED $1: $2"; exit 1; }
step() { echo "== $1 ($(date +%T))"; }

if [ "$DEVICE" = cuda ]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)" \
    || fail "device" "torch sees no CUDA device (torch.cuda.is_available() is False)"
  "$PY" -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| CUDA', torch.version.cuda)"

  step "1. build the CUDA kernels"
  "$PY" -m kernels.build --variant cuda > "$OUT_DIR/build.log" 2>&1 \
    || fail "build" "python -m kernels.build --variant cuda (see $OUT_DIR/build.log: $(tail -n 1 "$OUT_DIR/build.log"))"

  step "2. CUDA-vs-CPU parity of every op"
  "$PY" -m pytest -p no:cacheprovider -q -m cuda -rs tests/ > "$OUT_DIR/parity.log" 2>&1
  status=$?
  tail -n 3 "$OUT_DIR/parity.log"
  [ $status -eq 0 ] || fail "parity" "$(grep -m1 -E '^FAILED|Error' "$OUT_DIR/parity.log" || tail -n 1 "$OUT_DIR/parity.log")"
  if grep -qE '[0-9]+ skipped' "$OUT_DIR/parity.log"; then
    fail "parity" "some CUDA tests were skipped: $(grep -m1 SKIPPED "$OUT_DIR/parity.log")"
  fi
  grep -qE '[0-9]+ passed' "$OUT_DIR/parity.log" || fail "parity" "no CUDA test ran"
else
  echo "rehearsal on $DEVICE: steps 1-2 (CUDA build and parity) skipped"
fi

step "3. kernels.bench on $DEVICE"
"$PY" -m kernels.bench --device "$DEVICE" ${WSSS_CHECK_QUICK:+--quick} --json "$OUT_DIR/bench_$DEVICE.json" \
  > "$OUT_DIR/bench.log" 2>&1 || fail "bench" "$(tail -n 1 "$OUT_DIR/bench.log")"
cat "$OUT_DIR/bench.log"

step "4. tiny minivoc pipeline with device=$DEVICE"
WORK="$(mktemp -d)"
cp -r Snakefile rules conf stages wsss kernels profiles "$WORK"/
for recipe in psa random_walk; do echo "overrides: {propagate: [propagation.steps=32]}" >> "$WORK/conf/recipe/$recipe.yaml"; done
echo "overrides: {propagate: [propagation.epochs=10]}" >> "$WORK/conf/recipe/a2gnn.yaml"
(cd "$WORK" && PYTHONPATH="$WORK" "$PY" -m snakemake --cores all minivoc_image_pseudolabels minivoc_point_compare \
   --config "overrides=device=$DEVICE" 'make_minivoc=n_train=24 n_val=4' 'train_classifier=train.epochs=3' \
   'train_affinity=train.epochs=2' > "$OUT_DIR/pipeline.log" 2>&1) \
  || fail "pipeline" "snakemake with device=$DEVICE (see $OUT_DIR/pipeline.log: $(grep -m1 -i 'error' "$OUT_DIR/pipeline.log"))"
"$PY" - "$WORK" "$DEVICE" <<'EOF'
import csv, json, sys
from pathlib import Path
work, device = Path(sys.argv[1]), sys.argv[2]
rows = []
for path in sorted((work / "logs").rglob("*.benchmark.tsv")):
    with path.open() as handle:
        record = list(csv.DictReader(handle, delimiter="\t"))[-1]
    rows.append((str(path.relative_to(work / "logs")).removesuffix(".benchmark.tsv"), float(record["s"])))
print(f"stage wall times with device={device} (s):")
for name, seconds in rows:
    print(f"  {name:60s} {seconds:8.1f}")
table = json.loads((work / "results/minivoc/point/compare/table.json").read_text())
print("final mIoU per point recipe:", {r["name"]: round(r["final"]["miou"], 2) for r in table["recipes"]})
EOF
cp "$WORK/results/minivoc/point/compare/table.md" "$OUT_DIR/compare_table.md"
rm -rf "$WORK"
echo "gpu_check: OK ($DEVICE)"
