#!/usr/bin/env bash
# Install NVIDIA's perf_analyzer into .tools/perf_analyzer (git-ignored), as ../shared/ENVIRONMENT.md verified:
# only tritonclient wheels <= 2.50 ship the binary, and that wheel must NOT enter the project's venv (its http
# extra pins geventhttpclient<=2.0.2, which conflicts with locust and nvidia-pytriton). So: download the wheel
# without dependencies, unzip the binary only, and give it libb64 (Debian package, extracted) and libcudart.so.12
# (pip, own folder).
# Usage: bash bench/tools/install_perf_analyzer.sh   -> prints the path of a wrapper script that runs it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DEST="$ROOT/.tools/perf_analyzer"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
mkdir -p "$DEST"
if [ ! -x "$DEST/bin/perf_analyzer" ]; then
  "$PY" -m pip download --quiet --no-deps tritonclient==2.50.0 --platform manylinux1_x86_64 --only-binary=:all: -d "$DEST/wheel"
  "$PY" - "$DEST" <<'PYEOF'
import pathlib, sys, zipfile
dest = pathlib.Path(sys.argv[1])
wheel = next((dest / "wheel").glob("tritonclient-2.50.0-*.whl"))
with zipfile.ZipFile(wheel) as z:
    data = z.read("tritonclient-2.50.0.data/data/bin/perf_analyzer")
(dest / "bin").mkdir(exist_ok=True)
(dest / "bin" / "perf_analyzer").write_bytes(data)
PYEOF
  chmod +x "$DEST/bin/perf_analyzer"
fi
# libb64: extracted from Debian's package into .tools (no root, no system change); apt-get install as a fallback.
if [ ! -e "$DEST/lib/libb64.so.0d" ]; then
  mkdir -p "$DEST/deb" "$DEST/lib"
  if (cd "$DEST/deb" && apt-get download libb64-0d >/dev/null 2>&1); then
    dpkg-deb -x "$(ls "$DEST"/deb/libb64-0d_*.deb | head -1)" "$DEST/deb/x"
    cp "$DEST"/deb/x/usr/lib/*/libb64.so.0d "$DEST/lib/"
  elif ldconfig -p | grep -q libb64.so.0d; then
    :  # already on the system
  elif command -v apt-get >/dev/null; then
    (apt-get install -y -qq libb64-0d >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq libb64-0d)) \
      || { echo "perf_analyzer needs libb64-0d: apt-get install libb64-0d" >&2; exit 1; }
  else
    echo "perf_analyzer needs libb64 (Debian package libb64-0d)" >&2; exit 1
  fi
fi
if [ ! -d "$DEST/cudart/nvidia/cuda_runtime/lib" ]; then
  "$PY" -m pip install --quiet --target "$DEST/cudart" "nvidia-cuda-runtime-cu12==12.*"
fi
cat > "$DEST/perf_analyzer" <<WRAP
#!/usr/bin/env bash
LD_LIBRARY_PATH="$DEST/lib:$DEST/cudart/nvidia/cuda_runtime/lib:\${LD_LIBRARY_PATH:-}" exec "$DEST/bin/perf_analyzer" "\$@"
WRAP
chmod +x "$DEST/perf_analyzer"
"$DEST/perf_analyzer" --version >/dev/null 2>&1 || { echo "perf_analyzer installed but does not start" >&2; exit 1; }
echo "$DEST/perf_analyzer"
