#!/usr/bin/env bash
# `make demo`: the main jobs on the sample images. Results land in demo_out/ (PNG files and
# JSON/CSV/Markdown summaries) and demo_out/runs/ (TensorBoard). Weights: pretrained when the
# torch hub cache has them, otherwise random (vizcli says so loudly).
set -euo pipefail
cd "$(dirname "$0")/.."
VIZCLI=.venv/bin/vizcli
OUT=demo_out
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== vizcli summary resnet18 --depth 1"
$VIZCLI summary resnet18 --depth 1
$VIZCLI summary resnet18 --image sample_images/chelsea.png --format json --output "$OUT/resnet18_summary.json"
$VIZCLI summary vit_b_16 --format markdown --depth 1 --output "$OUT/vit_b_16_summary.md"

echo "== vizcli fmaps resnet18 sample_images/ (every conv layer, every sample image)"
$VIZCLI fmaps resnet18 sample_images/ --weights auto --offline --max-channels 32 \
  --out "$OUT" --logdir "$OUT/runs"

echo "== vizcli kernels resnet18 --layer conv1,layer1.0.conv1"
$VIZCLI kernels resnet18 --layer conv1,layer1.0.conv1 --weights auto --offline \
  --out "$OUT" --logdir "$OUT/runs"

echo "== vizcli stats resnet18 sample_images/ --type Conv2d"
$VIZCLI stats resnet18 sample_images/ --type Conv2d --weights auto --offline --logdir "$OUT/runs"

echo "== vizcli graph resnet18 --depth 2"
$VIZCLI graph resnet18 --depth 2 -f svg --out "$OUT" --logdir "$OUT/runs"

echo "== vizcli cam resnet18 sample_images/ (Grad-CAM of each image's top class)"
$VIZCLI cam resnet18 sample_images/ --weights auto --offline --out "$OUT" --logdir "$OUT/runs"

echo
echo "Results: PNG files in $OUT/fmaps-resnet18/, $OUT/kernels-resnet18/ and $OUT/cam-resnet18/;"
echo "graph files in $OUT/graph-resnet18/; summaries in $OUT/."
echo "TensorBoard: .venv/bin/tensorboard --logdir $OUT/runs"
