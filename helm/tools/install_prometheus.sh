#!/usr/bin/env bash
# Install the real Prometheus server and promtool into .tools/prometheus/ (repository root, git-ignored), for the
# chart's rule tests (`promtool test rules`) and the test that runs a Prometheus against a local tritonserver.
#
# They come from Debian 12's `prometheus` package, pinned to one version: `apt-get download` fetches the .deb
# (no root needed, apt checks the archive signatures) and `dpkg -x` unpacks it; nothing is installed system-wide
# and no service starts. Idempotent: binaries of the expected version are kept. Needs apt-get and dpkg (Debian);
# with empty package lists run `apt-get update` first.
set -euo pipefail

DEB_VERSION="2.42.0+ds-5+deb12u1"
VERSION="2.42.0"

root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$root/.tools/prometheus"

installed() {
    [[ -x "$dest/promtool" && -x "$dest/prometheus" ]] &&
        "$dest/promtool" --version 2>&1 | grep -q "version $VERSION" &&
        "$dest/prometheus" --version 2>&1 | grep -q "version $VERSION"
}

if installed; then
    echo "install_prometheus: $dest has prometheus and promtool $VERSION already"
    exit 0
fi
command -v apt-get > /dev/null && command -v dpkg > /dev/null ||
    { echo "install_prometheus: needs apt-get and dpkg (Debian 12)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download "prometheus=$DEB_VERSION" > /dev/null 2>&1); then
    echo "install_prometheus: apt-get download prometheus=$DEB_VERSION failed; run apt-get update (or check that" \
        "Debian 12 still carries this version: apt-cache policy prometheus)" >&2
    exit 1
fi
dpkg -x "$work"/prometheus_*.deb "$work/x"
mkdir -p "$dest"
for tool in promtool prometheus; do
    install -m 0755 "$work/x/usr/bin/$tool" "$dest/$tool.tmp"
    mv -f "$dest/$tool.tmp" "$dest/$tool"
done
installed || { echo "install_prometheus: the unpacked binaries are not version $VERSION" >&2; exit 1; }
echo "install_prometheus: installed $dest/prometheus and $dest/promtool ($VERSION)"
