#!/usr/bin/env bash
# End-to-end load bench: builds the release examples, then drives the ping component of each
# runtime with examples/loadgen, a loopback XEP-0114 server, at windows 1, 100 and 1000, and
# prints a table of medians. The subjects, one per runtime and kind of controller: `ping`
# (smol, async controller), `ping_tokio` (tokio, async controller), `ping_std` (std, sync
# controller, on the loop's thread with a standby thread to take the loop over if it blocks)
# and `ping_std_async` (PING_ASYNC=1: an async controller on std). Every async controller
# is first polled on the loop's thread.
#
#   scripts/bench.sh            # N=100000 requests, REPS=3 runs per cell, medians
#   N=20000 REPS=1 scripts/bench.sh
#   WINDOWS="1 100 1000 10000" scripts/bench.sh
#   scripts/bench.sh --peers    # also the peers of ../shared/bench, if that directory exists
#   TCACHE=256 scripts/bench.sh # the components (not loadgen) with a larger glibc per-thread
#                               # cache, GLIBC_TUNABLES=glibc.malloc.tcache_count=256
#
# These are measurements, never tests: nothing fails because a machine is slow. On a small
# machine, close other work first: the component and loadgen share the cores.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-100000}
REPS=${REPS:-3}
WINDOWS=${WINDOWS:-"1 100 1000"}
PORT=${PORT:-5252}
peers=false
for arg in "$@"; do
  case "$arg" in
    --peers) peers=true ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

# With TCACHE, the components (never loadgen) run under glibc's tunable.
tunables=""
if [ -n "${TCACHE:-}" ]; then
  case "$TCACHE" in
    *[!0-9]*) echo "bench.sh: TCACHE must be a number" >&2; exit 2 ;;
  esac
  tunables="GLIBC_TUNABLES=glibc.malloc.tcache_count=$TCACHE"
fi

cd "$root"
echo "building release examples ..." >&2
cargo build --release -q --features std,tokio --example ping --example ping_std --example ping_tokio --example loadgen
bin="$root/target/release/examples"

# The value of a numeric JSON field in a one-line object.
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The command that starts a subject.
command_of() {
  case "$1" in
    ping_std_async) echo "env $tunables PING_ASYNC=1 $bin/ping_std" ;;
    *) echo "env $tunables $bin/$1" ;;
  esac
}
SUBJECTS=${SUBJECTS:-"ping ping_tokio ping_std ping_std_async"}

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for component in $SUBJECTS; do
  for window in $WINDOWS; do
    for rep in $(seq "$REPS"); do
      line=$("$bin/loadgen" --quiet --n "$N" --window "$window" --port "$PORT" \
        --spawn "$(command_of "$component")" 2>/dev/null | tail -n 1) || true
      case "$line" in
        "{"*) echo "$component $window $line" >> "$results"
              echo "  $component w=$window run $rep: $(echo "$line" | field stanzas_per_sec)/s p50 $(echo "$line" | field p50_us) us" >&2 ;;
        *) echo "  $component w=$window run $rep: FAILED" >&2 ;;
      esac
      sleep 0.3
    done
  done
done

echo
echo "exampple ping, loopback loadgen, N=$N, median of $REPS runs${TCACHE:+, components with glibc.malloc.tcache_count=$TCACHE}"
echo
echo "| component | window | stanzas/s | p50 µs | p90 µs | p99 µs | idle RSS MiB | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for component in $SUBJECTS; do
  for window in $WINDOWS; do
    rows=$(grep "^$component $window " "$results" | cut -d' ' -f3- || true)
    [ -n "$rows" ] || { echo "| $component | $window | failed | | | | | |"; continue; }
    m() { echo "$rows" | field "$1" | median; }
    printf '| %s | %s | %.0f | %.1f | %.1f | %.1f | %s | %s |\n' \
      "$component" "$window" "$(m stanzas_per_sec)" "$(m p50_us)" "$(m p90_us)" "$(m p99_us)" \
      "$(mib "$(m idle_rss_kb)")" "$(mib "$(m peak_rss_kb)")"
  done
done

if $peers; then
  shared="$root/../shared/bench"
  if [ ! -d "$shared/peers" ]; then
    echo
    echo "no peers: $shared/peers does not exist (the project does not need it)"
    exit 0
  fi
  # Build the peers in a copy: shared/ stays untouched.
  work="${TMPDIR:-/tmp}/exampple-bench-peers"
  if [ ! -x "$work/compbench/target/release/compbench" ]; then
    rm -rf "$work"
    cp -r "$shared" "$work"
    chmod -R u+w "$work"
    bash "$work/peers/setup"
  fi
  echo
  echo "peers and ours under compbench (the peers' own harness), N=$N, REPS=$REPS:"
  export N REPS
  PEERS=${PEERS:-"ideal tokio-xmpp"}
  # Each of our subjects as 'mine'; the first beside the peers.
  with=$PEERS
  for component in $SUBJECTS; do
    echo "## $component as 'mine'${with:+, with the peers}"
    # shellcheck disable=SC2086
    python3 "$work/peers/run_bench.py" --cmd "$(command_of "$component")" mine $with
    with=""
  done
fi
