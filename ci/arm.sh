#!/usr/bin/env bash
# ci/arm.sh: build the edgefault wheel natively inside emulated ARM Debian roots and run the test
# suite against the installed wheel there.
#
#   arm64 (aarch64): wheel built in the root, installed with numpy + onnxruntime (+ test extras)
#                    from PyPI, the whole suite run except the ASan/UBSan C++ build (see ci/README.md).
#   armhf (armv7):   Debian's python3-numpy/scipy/sklearn (PyPI has no armv7 wheels), wheel
#                    installed with --no-deps, no onnxruntime: the suite runs, tests that need
#                    onnxruntime or pyarrow skip with a reason.
#
# Usage:  ci/arm.sh [all|arm64|armhf|roots|clean]        (default: all; needs root)
#
# Environment (all optional):
#   EDGEFAULT_CI_CACHE      cache dir for root tarballs and pip caches   (/var/cache/edgefault-ci)
#   EDGEFAULT_ARM_WORK      where roots are unpacked for a run           (/tmp/edgefault-arm)
#   EDGEFAULT_DEBIAN_MIRROR Debian mirror for debootstrap                (http://deb.debian.org/debian)
#   EDGEFAULT_ARM_PYTEST    extra pytest arguments for both arches       (empty)
#   EDGEFAULT_ARM_DIST      where the built ARM wheels are copied        (<repo>/build/arm-dist)
#
# Network: only the Debian mirror (debootstrap, first run) and PyPI (pip inside the roots).
# Mounts (/proc, /dev, the ARM cpuinfo, the pip cache) are made inside a private mount namespace
# (unshare -m) that dies with the step, so nothing is ever left mounted on the host, even if the
# script is killed; an EXIT trap double-checks. Every run starts from a fresh copy of the cached
# root, so the script is idempotent.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${EDGEFAULT_CI_CACHE:-/var/cache/edgefault-ci}
WORK=${EDGEFAULT_ARM_WORK:-/tmp/edgefault-arm}
MIRROR=${EDGEFAULT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DIST=${EDGEFAULT_ARM_DIST:-$REPO/build/arm-dist}
SUITE=bookworm
# Bump when the recipe of a root changes (the cache key also hashes the package list).
ROOT_RECIPE=1
BASE_PKGS=python3,python3-venv,python3-dev,g++,make,cmake,ninja-build,ca-certificates
declare -A EXTRA_PKGS=([arm64]="" [armhf]=",python3-numpy,python3-scipy,python3-sklearn")
declare -A QEMU=([arm64]=aarch64 [armhf]=arm)
T0=$(date +%s)

log() { printf '[arm.sh %4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- safety: never leave a mount behind, never rm -rf through one ----------------------------
mounts_under() { awk -v p="$1/" 'index($2 "/", p) == 1 { print $2 }' /proc/self/mounts | sort -r; }
cleanup_mounts() {
  local m
  for m in $(mounts_under "$WORK"); do umount "$m" 2>/dev/null || umount -l "$m" || true; done
}
trap cleanup_mounts EXIT
trap 'exit 130' INT TERM
safe_rm() {
  [ -e "$1" ] || return 0
  cleanup_mounts
  [ -z "$(mounts_under "$1")" ] || die "refusing to delete $1: something is still mounted under it"
  rm -rf --one-file-system "$1"
}

# --- host tools and qemu binfmt ---------------------------------------------------------------
ensure_host() {
  [ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, binfmt_misc)"
  local need=() p
  for p in qemu-user-static binfmt-support debootstrap zstd; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  command -v unshare >/dev/null || die "unshare (util-linux) not found"
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  local q
  for q in aarch64 arm; do
    if [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$q" ]; then
      # Debian's own entry (flags OPF: F opens the interpreter now, so the roots need no copy
      # of qemu inside).
      [ -f "/usr/lib/binfmt.d/qemu-$q.conf" ] || die "/usr/lib/binfmt.d/qemu-$q.conf missing"
      cat "/usr/lib/binfmt.d/qemu-$q.conf" > /proc/sys/fs/binfmt_misc/register
      log "registered qemu-$q in binfmt_misc"
    fi
    grep -q '^enabled' "/proc/sys/fs/binfmt_misc/qemu-$q" || echo 1 > "/proc/sys/fs/binfmt_misc/qemu-$q"
  done
}

# --- roots: debootstrap once, then restore from a tarball ----------------------------------------
root_key() {
  printf '%s %s %s %s %s' "$ROOT_RECIPE" "$SUITE" "$1" "$BASE_PKGS${EXTRA_PKGS[$1]}" "$MIRROR" |
    sha256sum | cut -c1-12
}

ensure_root() {  # ensure_root ARCH -> fresh root in $WORK/ARCH
  local arch=$1 key tarball dir
  key=$(root_key "$arch")
  tarball=$CACHE/root-$SUITE-$arch-$key.tar.zst
  dir=$WORK/$arch
  safe_rm "$dir"
  mkdir -p "$CACHE" "$WORK"
  if [ ! -f "$tarball" ]; then
    log "$arch: no cached root ($tarball); debootstrap $SUITE from $MIRROR (a few minutes)"
    local tmp=$WORK/debootstrap-$arch
    safe_rm "$tmp"
    # In a private mount namespace too: debootstrap mounts /proc and /sys inside the target.
    if ! unshare --mount --propagation private --fork -- debootstrap --arch="$arch" --variant=minbase --include="$BASE_PKGS${EXTRA_PKGS[$arch]}" \
        "$SUITE" "$tmp" "$MIRROR" > "$WORK/debootstrap-$arch.log" 2>&1; then
      tail -30 "$WORK/debootstrap-$arch.log" >&2
      cleanup_mounts
      die "$arch: debootstrap failed (log: $WORK/debootstrap-$arch.log)"
    fi
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*_Packages
    log "$arch: saving root to $tarball"
    tar -C "$tmp" --numeric-owner -cf - . | zstd -q -T2 -3 -o "$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    # Drop roots cached under an older key for this arch.
    find "$CACHE" -maxdepth 1 -name "root-$SUITE-$arch-*.tar.zst" ! -name "$(basename "$tarball")" -delete
    mv "$tmp" "$dir"
  else
    log "$arch: restoring cached root $(basename "$tarball")"
    mkdir -p "$dir"
    zstd -q -d -c "$tarball" | tar -C "$dir" --numeric-owner -xf -
  fi
}

write_cpuinfo() {  # an ARM /proc/cpuinfo to bind over the root's (onnxruntime >= 1.28 reads it)
  local arch=$1 out=$2 i
  : > "$out"
  for i in 0 1 2 3; do
    if [ "$arch" = arm64 ]; then  # Cortex-A72, as on a Raspberry Pi 4 / CM4
      printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i" >> "$out"
    else  # Cortex-A7, as on a Raspberry Pi 2
      printf 'processor\t: %d\nmodel name\t: ARMv7 Processor rev 5 (v7l)\nBogoMIPS\t: 38.40\nFeatures\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm\nCPU implementer\t: 0x41\nCPU architecture: 7\nCPU variant\t: 0x0\nCPU part\t: 0xc07\nCPU revision\t: 5\n\n' "$i" >> "$out"
    fi
  done
  printf 'Hardware\t: BCM2835\nModel\t\t: emulated (qemu-user) for edgefault CI\n' >> "$out"
}

copy_source() {  # the working tree as git sees it (tracked + untracked, minus ignored files)
  local dest=$1
  mkdir -p "$dest"
  if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
      tar --null -T - -cf -) | tar -C "$dest" -xf -
  else
    tar -C "$REPO" --exclude=./build --exclude=./.git --exclude='*.so' --exclude=__pycache__ \
      --exclude=.hypothesis --exclude=.pytest_cache -cf - . | tar -C "$dest" -xf -
  fi
}

prepare_root() {
  local arch=$1 dir=$WORK/$1
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  # The host's CA bundle: it carries any CA the network path to PyPI needs.
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
  write_cpuinfo "$arch" "$WORK/cpuinfo-$arch"
  mkdir -p "$CACHE/pip-$arch" "$dir/root/.cache/pip" "$dir/out" "$dir/ci"
  copy_source "$dir/src"
}

# in_root ARCH 'commands': run bash commands in the root, in a private mount namespace, with a
# clean environment (env -i) so no host pip / Python settings leak in.
in_root() {
  local arch=$1 cmd=$2 dir=$WORK/$1
  unshare --mount --propagation private --fork -- /bin/bash -euo pipefail -c '
    r=$1 cpuinfo=$2 pipcache=$3 cmd=$4
    mount -t proc proc "$r/proc"
    mount --bind "$cpuinfo" "$r/proc/cpuinfo"
    mount --bind /dev "$r/dev"
    mount -t tmpfs -o size=256m tmpfs "$r/dev/shm"
    mount -t sysfs sysfs "$r/sys"
    mount --bind "$pipcache" "$r/root/.cache/pip"
    exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
      PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
      PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 PIP_PROGRESS_BAR=off \
      PYTHONDONTWRITEBYTECODE=1 CMAKE_BUILD_PARALLEL_LEVEL=2 \
      /bin/bash -euo pipefail -c "$cmd"
  ' _ "$dir" "$WORK/cpuinfo-$arch" "$CACHE/pip-$arch" "$cmd"
}

# Common steps: venv, wheel built natively from /src, wheel copied out.
BUILD_WHEEL='
cd /ci
python3 -m venv $VENV_FLAGS /opt/venv
python3 -c "import platform, sys; print(\"root:\", platform.machine(), sys.version.split()[0])"
pip wheel -q --no-deps -w /out /src
ls -l /out
'

run_arch() {
  local arch=$1 t
  t=$(date +%s)
  ensure_root "$arch"
  prepare_root "$arch"
  log "$arch: root ready; building the wheel natively under qemu-${QEMU[$arch]}"
  local pytest_args="-p no:cacheprovider -q -rs ${EDGEFAULT_ARM_PYTEST:-}"
  if [ "$arch" = arm64 ]; then
    in_root arm64 "VENV_FLAGS=; $BUILD_WHEEL"
    log "arm64: installing the wheel with numpy, onnxruntime and the test extras from PyPI"
    in_root arm64 '
      whl=$(ls /out/edgefault-*.whl)
      pip install -q "$whl[test]"
      python -c "import numpy, onnxruntime, edgefault; print(\"numpy\", numpy.__version__, \"onnxruntime\", onnxruntime.__version__, \"edgefault\", edgefault.__version__, edgefault.__file__)"'
    log "arm64: pytest (all but the ASan/UBSan C++ build)"
    in_root arm64 "cd /ci && pytest /src/tests $pytest_args -k 'not asan'"
  else
    # --system-site-packages: numpy, scipy, sklearn come from Debian (no armv7 wheels on PyPI).
    in_root armhf "VENV_FLAGS=--system-site-packages; $BUILD_WHEEL"
    log "armhf: installing the wheel with --no-deps (Debian numpy, no onnxruntime), pytest + hypothesis from PyPI"
    in_root armhf '
      whl=$(ls /out/edgefault-*.whl)
      pip install -q --no-deps "$whl"
      pip install -q "pytest>=8" "hypothesis>=6"
      python - <<EOF
import importlib.util, numpy, edgefault
assert importlib.util.find_spec("onnxruntime") is None, "onnxruntime must be absent on armv7"
print("numpy", numpy.__version__, "edgefault", edgefault.__version__, edgefault.__file__, "onnxruntime: absent")
EOF'
    log "armhf: pytest (no onnxruntime: those tests skip; ASan/UBSan C++ build deselected)"
    in_root armhf "cd /ci && pytest /src/tests $pytest_args -k 'not asan'"
  fi
  mkdir -p "$DIST"
  cp "$WORK/$arch"/out/edgefault-*.whl "$DIST/"
  log "$arch: OK in $(($(date +%s) - t)) s; wheel: $(cd "$WORK/$arch/out" && ls -l edgefault-*.whl | awk '{print $5, $9}')"
}

main() {
  local what=${1:-all}
  case $what in
    all|arm64|armhf|roots) ;;
    clean) cleanup_mounts; safe_rm "$WORK"; rm -rf "$CACHE"; log "removed $WORK and $CACHE"; return ;;
    -h|--help) sed -n '2,26p' "${BASH_SOURCE[0]}"; return ;;
    *) die "unknown command '$what' (all|arm64|armhf|roots|clean)" ;;
  esac
  ensure_host
  case $what in
    roots) ensure_root arm64; ensure_root armhf ;;
    all) run_arch arm64; run_arch armhf ;;
    *) run_arch "$what" ;;
  esac
  cleanup_mounts
  [ -z "$(mounts_under "$WORK")" ] || die "mounts left under $WORK"
  log "done: $what in $(($(date +%s) - T0)) s"
}

main "$@"
