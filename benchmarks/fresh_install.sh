#!/usr/bin/env bash
# A fresh virtual environment, installed the way a user would (`pip install torch==2.13.0 &&
# pip install .`), then every command without Lava, the one-line refusal of --backend lava,
# `neurocredit setup-lava`, and the Lava backend.  Prints the transcript; run from the
# repository root:  bash benchmarks/fresh_install.sh | tee benchmarks/results/fresh_install.txt
set -uo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${FRESH_VENV:-/tmp/fresh}"
step() { echo; echo "\$ $*"; "$@"; echo "[exit $?]"; }

echo "# fresh install transcript, $(date -u '+%Y-%m-%d %H:%M UTC'), $(python3.11 --version), commit $(git -C "$REPO" rev-parse --short HEAD)"
rm -rf "$VENV"
step python3.11 -m venv "$VENV"
step "$VENV/bin/pip" install -q torch==2.13.0
cd "$REPO" || exit 1
step "$VENV/bin/pip" install -q .
rm -rf "$REPO/build"                      # setuptools' build folder of `pip install .`
WORK="$(mktemp -d)"; cd "$WORK" || exit 1
export PATH="$VENV/bin:$PATH"
echo; echo "# in $WORK, outside the checkout: everything below comes from the installed package"
step which neurocredit
step neurocredit --version
step neurocredit info
step neurocredit rules
step neurocredit export dfa.nir --rule dfa --hidden 64 --epochs 2 --readout lif
step neurocredit inspect dfa.nir
step neurocredit compile dfa.nir --fixed-point
step neurocredit run dfa.nir --backend emulator --steps 50
step neurocredit run dfa.nir --backend emulator --data digits
step neurocredit learn dfa.nir --backend emulator --samples 300 --out learned.nir
step neurocredit run learned.nir --backend emulator --data digits
echo; echo "# without Lava, the Lava backend is one line that says how to add it"
step neurocredit run dfa.nir --backend lava --steps 20
step neurocredit learn dfa.nir --backend lava --samples 3
step neurocredit compile dfa.nir --fixed-point --build
echo; echo "# add Lava: the two-step install and its Python 3.11 fix (the recipe make demo uses)"
step neurocredit setup-lava
step neurocredit info
step neurocredit compile dfa.nir --fixed-point --build
step neurocredit run dfa.nir --backend lava --steps 50
step neurocredit learn dfa.nir --backend lava --samples 5
step neurocredit learn dfa.nir --backend emulator --samples 5 --check 3
rm -rf "$WORK"
