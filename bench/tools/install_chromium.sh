#!/usr/bin/env bash
# Debian's Chromium for the browser test of the select report (tests/integration/test_select.py drives it with
# Playwright, executable /usr/bin/chromium). Needs root and apt; elsewhere it says what to install and exits 0, and
# the browser test skips (it fails on CI, where CI=1).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "chromium: $(chromium --version 2>/dev/null || echo present)"
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/tmp/tritonrec-apt-chromium.log 2>&1 || {
        apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
            >/tmp/tritonrec-apt-chromium.log 2>&1
    } || { tail -20 /tmp/tritonrec-apt-chromium.log; exit 1; }
    echo "chromium: $(chromium --version)"
else
    echo "chromium not installed and this is not a root shell with apt: install Debian's 'chromium' package" >&2
fi
