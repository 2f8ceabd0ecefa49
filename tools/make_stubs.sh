#!/usr/bin/env bash
# Regenerate edgefault/_core.pyi from the built module (pip install pybind11-stubgen).
# tests/test_stubs.py checks the result against the module with mypy.stubtest.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
pybind11-stubgen edgefault._core -o "$out" --numpy-array-use-type-var >/dev/null
# pybind11 modules have no __all__ at run time.
grep -v '^__all__' "$out/edgefault/_core.pyi" > edgefault/_core.pyi
rm -rf "$out"
echo "wrote edgefault/_core.pyi"
