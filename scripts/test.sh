#!/usr/bin/env bash
# Runs every test of the workspace, including the ignored ones that need real XMPP servers:
# starts a private Prosody and a private ejabberd on 127.0.0.1 (installing them with apt-get
# on a fresh Debian machine, as root), runs
#     cargo test --workspace --all-features --no-fail-fast [ARGS...] -- --include-ignored [TEST ARGS...]
# and stops the servers again, whatever the outcome. Exits with cargo's status.
#
#   scripts/test.sh                          everything
#   scripts/test.sh -p exampple-core         ARGS go to cargo test
#   scripts/test.sh -- --nocapture           arguments after -- go to the test binaries
#
# The tests find the servers through these variables (all exported):
#   EXAMPPLE_TEST_PROSODY_C2S=127.0.0.1:5222        EXAMPPLE_TEST_PROSODY_COMPONENT=127.0.0.1:5252
#   EXAMPPLE_TEST_EJABBERD_C2S=127.0.0.1:5223       EXAMPPLE_TEST_EJABBERD_COMPONENT=127.0.0.1:5253
#   EXAMPPLE_TEST_SCRIPTS=<absolute path of scripts/xmpp> (prosody-up/-down, ejabberd-up/-down)
#   EXAMPPLE_TEST_XMPP_DIR=<directory of the instances>: tests that start extra instances should
#     use subdirectories of it, so that this script stops them too if a test fails midway.
# Component domain component.localhost, secret "secret", XEP-0355 delegation on; users
# alice/alice-pass and bob/bob-pass on host localhost.
#
# Optional: EXAMPPLE_XMPP_DIR (default /tmp/exampple-xmpp) where the instances keep their config,
# data and logs; EXAMPPLE_KEEP_SERVERS=1 leaves the servers running at the end.
# shellcheck disable=SC2317  # (functions called from traps)
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
scripts=$root/scripts/xmpp
# shellcheck source-path=SCRIPTDIR source=xmpp/lib.sh
. "$scripts/lib.sh"

base=${EXAMPPLE_XMPP_DIR:-/tmp/exampple-xmpp}
prosody_dir=$base/prosody
ejabberd_dir=$base/ejabberd
marker=$base/.test-run-start   # logs newer than this were written by this run
start=$SECONDS

step() { echo "==> $*"; }

# The last lines of the logs written during this run (of every instance under $base).
print_logs() {
  local f
  for f in "$base"/*/prosody.log "$base"/*/prosody.err "$base"/*/stdout.log \
    "$base"/*/logs/ejabberd.log "$base"/*/logs/error.log "$base"/*/logs/ejabberdctl.log \
    "$base"/*/*/logs/ejabberd.log "$base"/*/*/logs/error.log; do
    if [ -s "$f" ] && [ "$f" -nt "$marker" ]; then
      echo "---- last lines of $f"
      tail -n 25 "$f"
    fi
  done
}

# Stops every instance under $base: ours and any that a failed test left behind (the nodes
# of a cluster are one level deeper: $base/cluster/n1, n2).
stop_servers() {
  local d
  for d in "$base"/*/ "$base"/*/*/; do
    d=${d%/}
    if [ -f "$d/prosody.cfg.lua" ]; then XMPP_DIR=$d "$scripts/prosody-down"; fi
    if [ -f "$d/node" ]; then XMPP_DIR=$d "$scripts/ejabberd-down"; fi
  done
}

status=1
cleanup() {
  trap - EXIT INT TERM
  if [ "$status" != 0 ]; then
    step "failed (status $status): server logs under $base"
    print_logs
  fi
  if [ "${EXAMPPLE_KEEP_SERVERS:-0}" = 1 ]; then
    step "leaving the servers running (EXAMPPLE_KEEP_SERVERS=1)"
  else
    step "stopping the XMPP servers"
    stop_servers
  fi
  step "done in $((SECONDS - start)) s, status $status"
  exit "$status"
}
trap cleanup EXIT
trap 'status=130; exit 130' INT
trap 'status=143; exit 143' TERM

# Split our arguments: before "--" for cargo test, after it for the test binaries.
cargo_args=() test_args=()
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then shift; test_args=("$@"); break; fi
  cargo_args+=("$1")
  shift
done

mkdir -p "$base"
touch -d '-1 second' "$marker" 2>/dev/null || touch "$marker"
# One apt-get run for both servers when something is missing (the -up scripts would each run one).
if ! command -v prosody >/dev/null 2>&1 || ! command -v ejabberdctl >/dev/null 2>&1; then
  step "installing Prosody and ejabberd"
  apt_install prosody prosody-modules lua-event lua-unbound ejabberd || exit 1
fi

step "starting Prosody (c2s 127.0.0.1:5222, component 127.0.0.1:5252)"
XMPP_DIR=$prosody_dir C2S_PORT=5222 COMPONENT_PORT=5252 COMPONENT_DOMAIN=component.localhost \
  COMPONENT_SECRET=secret XMPP_DELEGATION=1 XMPP_PRIVILEGE=1 PRIVILEGE_ROSTER=both "$scripts/prosody-up" || exit 1
step "starting ejabberd (c2s 127.0.0.1:5223, component 127.0.0.1:5253)"
XMPP_DIR=$ejabberd_dir C2S_PORT=5223 COMPONENT_PORT=5253 COMPONENT_DOMAIN=component.localhost \
  COMPONENT_SECRET=secret XMPP_DELEGATION=1 XMPP_PRIVILEGE=1 PRIVILEGE_ROSTER=both "$scripts/ejabberd-up" || exit 1

export EXAMPPLE_TEST_PROSODY_C2S=127.0.0.1:5222
export EXAMPPLE_TEST_PROSODY_COMPONENT=127.0.0.1:5252
export EXAMPPLE_TEST_EJABBERD_C2S=127.0.0.1:5223
export EXAMPPLE_TEST_EJABBERD_COMPONENT=127.0.0.1:5253
export EXAMPPLE_TEST_SCRIPTS=$scripts
export EXAMPPLE_TEST_XMPP_DIR=$base

step "cargo test --workspace --all-features --no-fail-fast ${cargo_args[*]} -- --include-ignored ${test_args[*]}"
cargo test --workspace --all-features --no-fail-fast "${cargo_args[@]}" -- --include-ignored "${test_args[@]}"
status=$?
exit "$status"
