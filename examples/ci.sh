#!/usr/bin/env bash
# A CI job for a model: rules that fail the build, and a report of what changed.
#   bash examples/ci.sh            (from the repository root, after `make install`)
# Writes check.xml (JUnit, for the CI system's test view) and model-diff.md (paste it as a
# pull-request comment). Exit status: vizcli check's (0 all rules hold, 1 one failed, 2 bad rule).
set -euo pipefail
VIZCLI=${VIZCLI:-.venv/bin/vizcli}
MODEL=examples/efficientnet_lite0.py:efficientnet_lite0
BASELINE=examples/efficientnet_lite0.summary.json  # vizcli summary "$MODEL" -f json -o ...
OUT=${OUT:-ci_out}
mkdir -p "$OUT"

# What changed against the baseline, for the pull request (never fails the job).
"$VIZCLI" diff "$BASELINE" "$MODEL" -f markdown -o "$OUT/model-diff.md" --force

# The rules. Each prints one PASS/FAIL line with the measured value; any FAIL exits 1.
"$VIZCLI" check "$MODEL" sample_images/ \
  --max-params 5M --max-mult-adds 500M --max-activation-memory 200MB \
  --input-shape 1,3,224,224 --input-shape 4,3,224,224 \
  --finite --max-dead-units 50% \
  --expect sample_images/coffee.png=espresso --expect sample_images/camera.png=tripod \
  --baseline "$BASELINE" --max-growth 1% \
  --junit "$OUT/check.xml"
