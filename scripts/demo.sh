#!/usr/bin/env bash
# The showcase, end to end: starts a private Prosody on 127.0.0.1 (installing it with apt-get
# on a fresh Debian machine), builds and starts the showcase component, and drives it as the
# user alice with the project's own client, printing each request and reply. Stops everything
# at the end. Exits non-zero if any step does not get the expected answer.
#
#   scripts/demo.sh
#
# Ports (other than the test servers', so both can run): c2s 127.0.0.1:5242, component 5272;
# override with DEMO_C2S_PORT / DEMO_COMPONENT_PORT. Logs under $DEMO_DIR (/tmp/exampple-demo).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
scripts=$root/scripts/xmpp
dir=${DEMO_DIR:-/tmp/exampple-demo}
c2s_port=${DEMO_C2S_PORT:-5242}
component_port=${DEMO_COMPONENT_PORT:-5272}
component_pid=

step() { echo "==> $*"; }

cleanup() {
  trap - EXIT INT TERM
  if [ -n "$component_pid" ] && kill -0 "$component_pid" 2>/dev/null; then
    kill "$component_pid" 2>/dev/null
    wait "$component_pid" 2>/dev/null
  fi
  XMPP_DIR=$dir/prosody "$scripts/prosody-down" >/dev/null 2>&1
  step "stopped the showcase and Prosody"
  exit "${status:-1}"
}
trap cleanup EXIT
trap 'status=130; exit 130' INT
trap 'status=143; exit 143' TERM

mkdir -p "$dir"
step "building the showcase and the demo client"
cargo build --quiet --features client --example showcase --example demo_client || { status=1; exit 1; }

step "starting a private Prosody (c2s 127.0.0.1:$c2s_port, component component.localhost on $component_port)"
XMPP_DIR=$dir/prosody C2S_PORT=$c2s_port COMPONENT_PORT=$component_port COMPONENT_DOMAIN=component.localhost \
  COMPONENT_SECRET=secret XMPP_DELEGATION=1 XMPP_PRIVILEGE=1 "$scripts/prosody-up" || { status=1; exit 1; }

step "starting the showcase (log: $dir/showcase.log)"
EXAMPPLE_HOST=127.0.0.1 EXAMPPLE_PORT=$component_port EXAMPPLE_DOMAIN=component.localhost \
  EXAMPPLE_PASSWORD=secret RUST_LOG=${RUST_LOG:-info} \
  "$root/target/debug/examples/showcase" >"$dir/showcase.log" 2>&1 &
component_pid=$!

step "the routes it serves (showcase routes):"
"$root/target/debug/examples/showcase" routes | sed 's/^/    /'

step "alice talks to the showcase through Prosody"
DEMO_C2S=127.0.0.1:$c2s_port DEMO_COMPONENT=component.localhost "$root/target/debug/examples/demo_client"
status=$?
if [ "$status" != 0 ]; then
  step "the demo failed; the showcase's log:"
  tail -n 30 "$dir/showcase.log"
else
  step "every step got the expected answer; the showcase's log of them:"
  grep -E "success|error" "$dir/showcase.log" | tail -n 20 | sed 's/^/    /'
fi
exit "$status"
