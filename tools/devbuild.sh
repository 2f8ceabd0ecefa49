#!/usr/bin/env bash
# Developer build: compile the core into build/dev-$NAME and copy _core into edgefault/ in place,
# so `PYTHONPATH=$PWD python -m pytest` runs against the working tree. Usage: tools/devbuild.sh [NAME]
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-default}
bdir=build/dev-$name
if [ ! -f "$bdir/CMakeCache.txt" ]; then
  cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DSKBUILD_PROJECT_NAME=edgefault -DSKBUILD_PROJECT_VERSION=0.1.0 \
    -DEDGEFAULT_BUILD_TESTS=ON \
    -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v python3)" >/dev/null
fi
cmake --build "$bdir" -j2
# copy then rename: replacing the file in place would crash processes that have it loaded
so=$(ls "$bdir"/_core*.so)
cp "$so" "edgefault/.$(basename "$so").tmp" && mv -f "edgefault/.$(basename "$so").tmp" "edgefault/$(basename "$so")"
# export/ is installed as edgefault.export; mirror that in the working tree.
[ -e edgefault/export ] || ln -s ../export edgefault/export
echo "built $bdir; ctest: ctest --test-dir $bdir/cpp --output-on-failure"
