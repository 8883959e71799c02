#!/usr/bin/env bash
# Soak test: mixed traffic (ping, chat, disco, RPC, forms, errors, presence probes) through a
# loopback XEP-0114 server into the showcase's router on the smol runtime, in a release build.
# Prints stanzas handled, errors and memory at intervals; fails if an answer is missing or
# wrong, or if memory grows after the warm-up.
#
#   scripts/soak.sh                 one hour
#   SOAK_SECS=600 scripts/soak.sh   ten minutes (SOAK_REPORT_SECS sets the report interval)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SOAK_SECS=${SOAK_SECS:-3600}
exec cargo test --release --test soak -- --ignored --nocapture
