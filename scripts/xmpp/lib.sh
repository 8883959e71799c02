# shellcheck shell=bash
# Helpers shared by the prosody-* and ejabberd-* scripts (sourced, not executed).

# Prints a progress line prefixed by the script's name.
say() { echo "${0##*/}: $*"; }
# Prints an error line to stderr.
err() { echo "${0##*/}: $*" >&2; }

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits (up to $2 seconds, default 30) until nothing listens on 127.0.0.1:$1.
wait_port_free() {
  local port=$1 limit=$(( ${2:-30} * 10 )) i
  for ((i = 0; i < limit; i++)); do
    port_open "$port" || return 0
    sleep 0.1
  done
  err "port $port is still in use"
  return 1
}

# True if process $1 is alive and its command line contains $2.
pid_matches() {
  local pid=$1 needle=$2
  [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$needle"
}

# True if process $1 is alive (a zombie, waiting for its parent to reap it, counts as dead:
# the servers are orphans, and PID 1 in a container may be slow to reap, or never reap).
pid_alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# Waits (up to $2 seconds) for process $1 to exit.
wait_pid_gone() {
  local pid=$1 limit=$(( ${2:-10} * 10 )) i
  for ((i = 0; i < limit; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

# Installs Debian packages with apt-get (apt-get update first), as root or through sudo.
# A policy-rc.d that answers 101 is in place during the installation so that the packages'
# system services are not started (they would take the default ports). Serialised with a lock
# so that several scripts may install at the same time.
apt_install() {
  local sudo="" log
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { err "need root (or sudo) to install $*"; return 1; }
    sudo="sudo"
  fi
  log=$(mktemp "${TMPDIR:-/tmp}/exampple-apt.XXXXXX")
  say "installing $* with apt-get (log $log)"
  # shellcheck disable=SC2016
  if ! $sudo env DEBIAN_FRONTEND=noninteractive bash -c '
      set -e
      exec 9>/var/lock/exampple-xmpp-apt.lock
      flock 9
      policy=/usr/sbin/policy-rc.d backup=""
      if [ -e "$policy" ]; then backup=$(mktemp); cp -p "$policy" "$backup"; fi
      restore() { if [ -n "$backup" ]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi; }
      trap restore EXIT
      printf "#!/bin/sh\nexit 101\n" >"$policy"; chmod 755 "$policy"
      apt-get update -q
      apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "$@"
    ' apt_install "$@" >"$log" 2>&1; then
    err "apt-get install $* failed; last lines of $log:"
    tail -n 20 "$log" >&2
    return 1
  fi
  rm -f "$log"
}
