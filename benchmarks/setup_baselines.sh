#!/usr/bin/env bash
# Install the third-party baselines the benchmarks compare against, idempotently:
#   - ausearch (Debian package `auditd`) for the linux_auditd suite;
#   - msticpy in its own venv (benchmarks/work/venv-msticpy), so the project venv is not
#     polluted by its large dependency tree.
# Called by `make bench`; safe to re-run (each step is skipped when already done).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$here/work"
mkdir -p "$work"

if ! command -v ausearch >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y auditd
fi

venv="$work/venv-msticpy"
if ! "$venv/bin/python" -c "import msticpy.transform.auditdextract" >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet msticpy
fi

echo "baselines ready: $(command -v ausearch), $venv/bin/python (msticpy" \
     "$("$venv/bin/python" -c 'import msticpy; print(msticpy.__version__)'))"
