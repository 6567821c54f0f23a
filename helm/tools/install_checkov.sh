#!/usr/bin/env bash
# Install checkov (Prisma Cloud's policy scanner, PyPI) into its own virtualenv .tools/checkov/ (git-ignored), for
# the chart tests that scan every rendered ci scenario (tests/helm/test_checkov.py).
#
# checkov 3.3.30 pins packaging<24 (and many more), which conflicts with the project's constraints.txt
# (`pip install --dry-run checkov==3.3.30 -c constraints.txt` fails), so it gets a virtualenv of its own, every
# package pinned by helm/tools/checkov-constraints.txt. Idempotent: an installed checkov of that version is kept.
set -euo pipefail

VERSION="3.3.30"
PYTHON="${PYTHON:-python3}"

root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.tools/checkov"
constraints="$root/helm/tools/checkov-constraints.txt"

if [[ -x "$venv/bin/checkov" ]] && [[ "$("$venv/bin/checkov" --version 2> /dev/null)" == "$VERSION" ]]; then
    echo "install_checkov: $venv/bin/checkov is $VERSION already"
    exit 0
fi
rm -rf "$venv"
"$PYTHON" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "checkov==$VERSION" -c "$constraints"
installed="$("$venv/bin/checkov" --version)"
[[ "$installed" == "$VERSION" ]] || { echo "install_checkov: got checkov $installed, expected $VERSION" >&2; exit 1; }
echo "install_checkov: installed $venv/bin/checkov ($installed)"
