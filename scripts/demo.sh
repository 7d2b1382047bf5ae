#!/usr/bin/env bash
# `make demo`: the main job on the sample images, written under demo_out/.
set -euo pipefail
cd "$(dirname "$0")/.."
VIZCLI=.venv/bin/vizcli
OUT=demo_out
mkdir -p "$OUT"

echo "== vizcli models resnet"
$VIZCLI models resnet --task classification

echo "== vizcli summary resnet18 --depth 2"
$VIZCLI summary resnet18 --depth 2

echo "== vizcli summary resnet18 --image sample_images/chelsea.png --format json"
$VIZCLI summary resnet18 --image sample_images/chelsea.png --format json \
  --output "$OUT/resnet18_summary.json" --force
$VIZCLI summary vit_b_16 --format markdown --depth 1 --output "$OUT/vit_b_16_summary.md" --force
$VIZCLI summary resnet50 --format csv --output "$OUT/resnet50_summary.csv" --force

echo
echo "Results are in $OUT/: $(ls "$OUT" | tr '\n' ' ')"
