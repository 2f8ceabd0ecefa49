#!/usr/bin/env bash
# Developer build: compile the core into build/dev-$NAME and copy _core into edgefault/ in place,
# so `PYTHONPATH=$PWD python -m pytest` runs against the working tree. Usage: tools/devbuild.sh [NAME]
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-default}
bdir=build/dev-$name
# The one version source: __version__ in edgefault/__init__.py (what scikit-build-core's regex
# provider reads for `pip install .`, see pyproject.toml). Passed as scikit-build-core passes it:
# SKBUILD_PROJECT_VERSION = the release numbers only (at most four, valid for CMake's project()),
# SKBUILD_PROJECT_VERSION_FULL = the string as written.
version=$(sed -nE "s/^__version__ *= *[\"']v?([^\"']+)[\"'].*/\1/p" edgefault/__init__.py)
release=$(printf '%s\n' "$version" | sed -nE 's/^([0-9]+(\.[0-9]+){0,3}).*/\1/p')
if [ -z "$version" ] || [ -z "$release" ]; then
  echo "devbuild: no __version__ = \"<number>...\" line in edgefault/__init__.py" >&2
  exit 1
fi
# an initial-cache script rather than -D: CMake warns about -D variables the project does not read
mkdir -p "$bdir"
printf 'set(%s "%s" CACHE STRING "from edgefault/__init__.py" FORCE)\n' SKBUILD_PROJECT_VERSION "$release" \
  SKBUILD_PROJECT_VERSION_FULL "$version" >"$bdir/version.cmake"
if [ ! -f "$bdir/CMakeCache.txt" ]; then
  cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -C "$bdir/version.cmake" \
    -DSKBUILD_PROJECT_NAME=edgefault \
    -DEDGEFAULT_BUILD_TESTS=ON \
    -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v python3)" >/dev/null
elif [ "$(sed -n 's/^SKBUILD_PROJECT_VERSION_FULL:[A-Z]*=//p' "$bdir/CMakeCache.txt")" != "$version" ]; then
  cmake -S . -B "$bdir" -C "$bdir/version.cmake" >/dev/null  # configured before, with another version
fi
cmake --build "$bdir" -j2
# copy then rename: replacing the file in place would crash processes that have it loaded
so=$(ls "$bdir"/_core*.so)
cp "$so" "edgefault/.$(basename "$so").tmp" && mv -f "edgefault/.$(basename "$so").tmp" "edgefault/$(basename "$so")"
# export/ is installed as edgefault.export; mirror that in the working tree.
[ -e edgefault/export ] || ln -s ../export edgefault/export
echo "built $bdir; ctest: ctest --test-dir $bdir/cpp --output-on-failure"
