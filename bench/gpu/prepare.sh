#!/usr/bin/env bash
# Gather into .carry/ (git-ignored) exactly what bench/gpu/run.sh needs on the GPU machine, which has torch,
# numpy 2, grpcio and protobuf (versions unknown) but no Triton server, no tritonclient and no registry, and
# takes at most 64 MiB of files along (working tree + carried paths). Prints every size and the total; fails
# if the total is over the limit. See bench/gpu/README.md.
#
#   bash bench/gpu/prepare.sh                 # wheels for CPython 3.12 (the GPU machine's), server, perf_analyzer
#   PYVER=3.11 bash bench/gpu/prepare.sh      # the same for another Python (a rehearsal on this machine)
#   CHECKPOINT=artifacts/x bash bench/gpu/prepare.sh   # carry another base checkpoint (default below; trained
#                                                      # here first, 8 minutes, when it does not exist)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
PYVER="${PYVER:-3.12}"
CARRY="${CARRY:-$ROOT/.carry}"
DOWNLOADS="$ROOT/.tools/gpu-downloads"   # not carried: the full wheels the carried parts are cut from
CHECKPOINT="${CHECKPOINT:-$ROOT/artifacts/gpu-beauty-base}"
LIMIT_MIB=64
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"

pin() {  # the version constraints.txt pins for a package
  grep -i -E "^$1==" constraints.txt | head -1 || { echo "no pin for $1 in constraints.txt" >&2; exit 1; }
}
download() {  # download DIR REQUIREMENT: one wheel for CPython $PYVER on x86-64 Linux, no dependencies
  local platforms=()
  for tag in manylinux_2_35 manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
  done
  "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$PYVER" --implementation cp "${platforms[@]}" -d "$1" "$2"
}

rm -rf "$CARRY"
mkdir -p "$CARRY/wheels" "$DOWNLOADS"
echo "== wheels for CPython $PYVER (tritonclient's gRPC code needs protobuf >= 6.33 and grpcio >= 1.81)"
for package in tritonclient python-rapidjson protobuf grpcio; do
  download "$CARRY/wheels" "$(pin "$package")"
done

echo "== tritonserver: the server parts of $(pin nvidia-pytriton) (stub for Python $PYVER only)"
download "$DOWNLOADS" "$(pin nvidia-pytriton)"
"$PY" -m tritonrec.bench.gpu.carry pack-server "$(ls "$DOWNLOADS"/nvidia_pytriton-0.7.0-*.whl | head -1)" \
  "$CARRY/tritonserver.tar.xz" --python "$PYVER"

echo "== perf_analyzer from tritonclient==2.50.0 (the last wheel that ships it)"
download "$DOWNLOADS" tritonclient==2.50.0
"$PY" -m tritonrec.bench.gpu.carry pack-perf-analyzer "$(ls "$DOWNLOADS"/tritonclient-2.50.0-*.whl | head -1)" \
  "$CARRY/perf_analyzer.xz"

echo "== a shared libpython$PYVER, used there only if the machine has none"
LIBPYTHON=""
for candidate in "$(command -v "python$PYVER" || true)" "$HOME"/.pyenv/versions/"$PYVER".*/bin/python"$PYVER"; do
  [ -x "$candidate" ] || continue
  LIBPYTHON="$("$candidate" -c 'import pathlib, sysconfig as s; p = pathlib.Path(s.get_config_var("LIBDIR") or "", s.get_config_var("INSTSONAME") or ""); print(p if p.is_file() else "")' 2>/dev/null || true)"
  [ -n "$LIBPYTHON" ] && break
done
if [ -n "$LIBPYTHON" ]; then
  "$PY" -m tritonrec.bench.gpu.carry pack-file "$LIBPYTHON" "$CARRY/libpython$PYVER.so.1.0.xz"
  echo "from $LIBPYTHON"
else
  echo "none found here: the stub will need the machine's own libpython$PYVER.so.1.0"
fi

echo "== the base checkpoint ($CHECKPOINT)"
if [ ! -f "$CHECKPOINT/checkpoint.json" ]; then
  echo "not found: training it (Beauty, base preset, seed 0, 8 minutes)"
  "$ROOT/.venv/bin/tritonrec" train --dataset beauty --preset base --seed 0 --max-minutes 8 --out "$CHECKPOINT" --quiet
fi
mkdir -p "$CARRY/checkpoint"
cp "$CHECKPOINT/checkpoint.json" "$CHECKPOINT/weights.pt" "$CARRY/checkpoint/"

echo "== provenance"
{ echo "commit $(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD -- src bench || echo -dirty)"
  echo "prepared $(date -u +%Y-%m-%dT%H:%M:%SZ) for CPython $PYVER"; } | tee "$CARRY/SOURCE"

echo "== sizes"
(cd "$CARRY" && find . -type f -printf '%s\t%p\n' | sort -k2 | awk -F'\t' '{printf "%10.2f MiB  %s\n", $1 / 1048576, $2}')
carried=$("$PY" -m tritonrec.bench.gpu.carry size "$CARRY")
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
total=$((carried + tree))
awk -v c="$carried" -v t="$tree" -v s="$total" -v l="$LIMIT_MIB" 'BEGIN {
  printf "carried (.carry): %.2f MiB\nworking tree:     %.2f MiB\ntotal:            %.2f MiB of %d MiB\n",
         c / 1048576, t / 1048576, s / 1048576, l }'
if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "over the ${LIMIT_MIB} MiB a call may take along" >&2
  exit 1
fi
