# Shared set-up for the scripts/ entry points: sourced, never run. Idempotent: installs only what is missing.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

# Debian packages the project needs: perf, the four anchors, a C toolchain, the real programs the tests
# run, and Go for `go tool pprof`, which checks the pprof export (analyze/tests/export.rs).
HZ3_APT_PACKAGES=(linux-perf libgoogle-perftools4 libjemalloc2 libmimalloc2.0 build-essential valgrind
                  python3 perl git sqlite3 libpython3.11-testsuite golang-go cmake autoconf)

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }

ensure_packages() {
    local missing=()
    for pkg in "${HZ3_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "installing: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # Root may sample the kernel regardless; a non-root user needs this lowered (hz3-analyze says so too).
    if [ "$(id -u)" -eq 0 ] && [ "$(cat /proc/sys/kernel/perf_event_paranoid)" -gt 1 ]; then
        sysctl -q kernel.perf_event_paranoid=1 || true
    fi
    ensure_tracefs
}

# The sched_switch tracepoint (off-CPU time) lives in tracefs, which a fresh machine may not have
# mounted. Root mounts it (what `hz3-analyze record` also does); anyone else is told how.
ensure_tracefs() {
    [ -e /sys/kernel/tracing/events/sched/sched_switch ] && return 0
    [ -e /sys/kernel/debug/tracing/events/sched/sched_switch ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "tracefs is not mounted: off-CPU time will not be recorded (as root: mount -t tracefs nodev /sys/kernel/tracing)"
        return 0
    fi
    if [ -d /sys/kernel/tracing ] && [ -z "$(ls -A /sys/kernel/tracing)" ]; then
        log "mounting tracefs on /sys/kernel/tracing (off-CPU time needs sched:sched_switch)"
        mount -t tracefs nodev /sys/kernel/tracing \
            || log "mounting tracefs failed: off-CPU time will not be recorded"
    fi
}

ensure_rust() {
    command -v cargo >/dev/null || { log "cargo not found: install Rust (https://rustup.rs) first"; exit 1; }
    # scripts/test runs clippy and rustfmt; a minimal rustup profile lacks them.
    cargo clippy -V >/dev/null 2>&1 || rustup component add clippy >/dev/null 2>&1 ||
        { log "cargo clippy not found: rustup component add clippy"; exit 1; }
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt >/dev/null 2>&1 ||
        { log "cargo fmt not found: rustup component add rustfmt"; exit 1; }
}

build_tools() {
    log "building hz3-bench and hz3-analyze (release)"
    cargo build --release --quiet -p hz3-bench -p hz3-analyze
}
