#!/usr/bin/env bash
# ci/arm.sh: build the edgefault wheel natively inside emulated ARM Debian roots and run the test
# suite against the installed wheel there.
#
#   arm64 (aarch64): wheel built in the root, installed with numpy + onnxruntime (the vae extra)
#                    + the test extras from PyPI, the whole suite run except the ASan/UBSan C++
#                    build (see ci/README.md), the VAE fixture test (tests/test_vae_device.py) included.
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
#   EDGEFAULT_ARM_JOBS      arches run at once by `all` (1 or 2)          (2)
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
BASE_PKGS=python3,python3-venv,python3-dev,g++,make,cmake,ninja-build,ccache,ca-certificates
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
  mkdir -p "$CACHE/pip-$arch" "$CACHE/ccache-$arch" "$dir/root/.cache/pip" "$dir/root/.ccache" "$dir/out" "$dir/ci"
  copy_source "$dir/src"
}

# in_root ARCH 'commands': run bash commands in the root, in a private mount namespace, with a
# clean environment (env -i) so no host pip / Python settings leak in.
in_root() {
  local arch=$1 cmd=$2 dir=$WORK/$1
  unshare --mount --propagation private --fork -- /bin/bash -euo pipefail -c '
    r=$1 cpuinfo=$2 pipcache=$3 ccache=$4 cmd=$5
    mount -t proc proc "$r/proc"
    mount --bind "$cpuinfo" "$r/proc/cpuinfo"
    mount --bind /dev "$r/dev"
    mount -t tmpfs -o size=256m tmpfs "$r/dev/shm"
    mount -t sysfs sysfs "$r/sys"
    mount --bind "$pipcache" "$r/root/.cache/pip"
    mount --bind "$ccache" "$r/root/.ccache"
    exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
      PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
      PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 PIP_PROGRESS_BAR=off \
      PYTHONDONTWRITEBYTECODE=1 CMAKE_BUILD_PARALLEL_LEVEL=2 \
      CMAKE_CXX_COMPILER_LAUNCHER=ccache CCACHE_DIR=/root/.ccache CCACHE_MAXSIZE=400M \
      /bin/bash -euo pipefail -c "$cmd"
  ' _ "$dir" "$WORK/cpuinfo-$arch" "$CACHE/pip-$arch" "$CACHE/ccache-$arch" "$cmd"
}

# Requirements of the venv: the build requirements ([build-system] requires: the wheel is built
# without build isolation, so include paths are stable and ccache hits across runs), plus for
# arm64 the wheel's own dependencies, the vae extra (onnxruntime) and the test extras (numpy,
# scipy, scikit-learn, pyarrow, pytest, hypothesis, cmake, ninja), for armhf only pytest and
# hypothesis (numpy, scipy and scikit-learn are Debian's; no onnxruntime wheels for armv7).
write_requirements() {
  local arch=$1 out=$WORK/$1/ci/requirements.txt
  python3 - "$WORK/$arch/src/pyproject.toml" "$arch" > "$out" <<'EOF'
import sys, tomllib
d = tomllib.load(open(sys.argv[1], "rb"))
reqs = list(d["build-system"]["requires"])
if sys.argv[2] == "arm64":
    extras = d["project"]["optional-dependencies"]
    reqs += d["project"]["dependencies"] + extras["vae"] + extras["test"]
else:
    reqs += ["pytest>=8", "hypothesis>=6"]
print("\n".join(dict.fromkeys(reqs)))  # test repeats the vae extra's line
EOF
}

# The venv with the test dependencies (not edgefault) is cached per arch, keyed by the root and
# the requirements; `pip install "<wheel>[test]"` later installs anything a changed pyproject.toml
# adds, so a stale cache is slower, never wrong.
ensure_venv() {
  local arch=$1 dir=$WORK/$1 key tarball flags=""
  key=$(cat "$dir/ci/requirements.txt" <(root_key "$arch") | sha256sum | cut -c1-12)
  tarball=$CACHE/venv-$arch-$key.tar.zst
  [ "$arch" = armhf ] && flags=--system-site-packages  # Debian's numpy/scipy/sklearn
  if [ -f "$tarball" ]; then
    log "$arch: restoring cached test venv $(basename "$tarball")"
    mkdir -p "$dir/opt/venv"
    zstd -q -d -c "$tarball" | tar -C "$dir/opt/venv" --numeric-owner -xf -
  else
    log "$arch: creating the test venv: pip install -r requirements ($(paste -sd' ' "$dir/ci/requirements.txt"))"
    in_root "$arch" "python3 -m venv $flags /opt/venv && pip install -q -r /ci/requirements.txt"
    tar -C "$dir/opt/venv" --numeric-owner -cf - . | zstd -q -T2 -3 -o "$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    find "$CACHE" -maxdepth 1 -name "venv-$arch-*.tar.zst" ! -name "$(basename "$tarball")" -delete
  fi
}

step() {  # step ARCH LABEL COMMANDS: run in the root, timed
  local arch=$1 label=$2 t
  t=$(date +%s)
  log "$arch: $label"
  in_root "$arch" "$3"
  log "$arch: $label: $(($(date +%s) - t)) s"
}

run_arch() {
  local arch=$1 t
  t=$(date +%s)
  ensure_root "$arch"
  prepare_root "$arch"
  write_requirements "$arch"
  ensure_venv "$arch"
  step "$arch" "building the wheel natively under qemu-${QEMU[$arch]}" '
    python3 -c "import platform, sys; print(\"root:\", platform.machine(), \"python\", sys.version.split()[0])"
    pip wheel -q --no-deps --no-build-isolation -w /out /src
    ls -l /out
    ccache -s | grep -iE "hits|misses" || true'
  # Deselected under emulation: docs/daemon.md's quick start (trains the demo and replays 10 s in
  # real time: ~2 min under qemu; .ci/run runs it natively, in the demo command's fresh venv).
  # (--deselect takes node ids, relative to the rootdir /src)
  local pytest_args="-p no:cacheprovider -q -rs --durations=10 \
    --deselect tests/test_daemon_quickstart.py::test_local_quick_start_runs_as_documented ${EDGEFAULT_ARM_PYTEST:-}"
  if [ "$arch" = arm64 ]; then
    step arm64 "installing the wheel with its dependencies, the vae and test extras (PyPI)" '
      pip install -q "$(ls /out/edgefault-*.whl)[vae,test]"
      python -c "import numpy, onnxruntime, edgefault; print(\"numpy\", numpy.__version__, \"onnxruntime\", onnxruntime.__version__, \"edgefault\", edgefault.__version__, edgefault.__file__)"'
    step arm64 "pytest: the whole suite but the ASan/UBSan C++ build" \
      "cd /ci && pytest /src/tests $pytest_args -k 'not asan'"
  else
    step armhf "installing the wheel with --no-deps (Debian numpy, no onnxruntime)" '
      pip install -q --no-deps "$(ls /out/edgefault-*.whl)"
      python - <<EOF
import importlib.util, numpy, edgefault
assert importlib.util.find_spec("onnxruntime") is None, "onnxruntime must be absent on armv7"
print("numpy", numpy.__version__, "edgefault", edgefault.__version__, edgefault.__file__, "onnxruntime: absent")
EOF'
    # Not collected on armhf: the scikit-learn estimators of edgefault.train (sfdsc, fisher_dl)
    # import sklearn.utils.validation.validate_data (scikit-learn >= 1.6); armv7 has Debian's
    # 1.2.1 and no PyPI wheels. They are training code, not the device path.
    step armhf "pytest without onnxruntime (those tests skip; ASan/UBSan C++ build and sklearn>=1.6 estimator tests deselected)" \
      "cd /ci && pytest /src/tests $pytest_args -k 'not asan' --ignore=/src/tests/test_sfdsc.py --ignore=/src/tests/test_estimator_checks.py"
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
  local archs=() arch failed=() summary=""
  case $what in
    roots) ensure_root arm64; ensure_root armhf; log "roots cached in $CACHE"; return ;;
    all) archs=(arm64 armhf) ;;
    *) archs=("$what") ;;
  esac
  local jobs=${EDGEFAULT_ARM_JOBS:-2} pids=() status
  mkdir -p "$WORK"
  for arch in "${archs[@]}"; do
    # A subshell with its own set -e, so one arch failing still lets the other run; with
    # EDGEFAULT_ARM_JOBS=2 both arches run at once (qemu-user is mostly one thread per process),
    # each line prefixed with its arch.
    rm -f "$WORK/status-$arch"
    (
      t=$(date +%s)
      set +e
      (set -e; run_arch "$arch") 2>&1 | sed -u "s/^/[$arch] /"
      rc=${PIPESTATUS[0]}
      echo "$arch: $([ "$rc" = 0 ] && echo passed || echo FAILED) in $(($(date +%s) - t)) s" > "$WORK/status-$arch"
      exit "$rc"
    ) &
    pids+=($!)
    if [ "$jobs" -lt 2 ]; then wait "${pids[-1]}" || true; fi
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  for arch in "${archs[@]}"; do
    status=$(cat "$WORK/status-$arch" 2>/dev/null || echo "$arch: FAILED (no status)")
    summary+="  $status"$'\n'
    case $status in *passed*) ;; *) failed+=("$arch") ;; esac
  done
  cleanup_mounts
  [ -z "$(mounts_under "$WORK")" ] || die "mounts left under $WORK"
  log "summary (total $(($(date +%s) - T0)) s):"$'\n'"$summary"
  [ ${#failed[@]} = 0 ] || die "failed: ${failed[*]}"
}

main "$@"
