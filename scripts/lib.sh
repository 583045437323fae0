# shellcheck shell=bash
# Shared by scripts/dev and scripts/test (sourced, not run): prerequisite checks and
# installation for Debian/Ubuntu, and service detection. Expects `set -euo pipefail`
# and the current directory to be the repository root.

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Rust is not installed by these scripts (it is per-user, via rustup); say how.
ensure_cargo() {
  if ! command -v cargo >/dev/null 2>&1 && [[ -f "${HOME:-}/.cargo/env" ]]; then
    # rustup installed it, but this shell has not picked up ~/.cargo/bin yet.
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    cat >&2 <<'MSG'
error: `cargo` not found. Install Rust with rustup:

    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh

then open a new shell (or run `. "$HOME/.cargo/env"`) and run this again.
MSG
    exit 1
  fi
}

# Prints the directory holding initdb and pg_ctl: PATH first, else the highest
# /usr/lib/postgresql/<major>/bin (Debian keeps the server tools out of PATH).
pg_bin_dir() {
  local initdb dir best='' best_major=-1 major
  if initdb=$(command -v initdb 2>/dev/null) && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$initdb")"
    return 0
  fi
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] || continue
    major=${dir#/usr/lib/postgresql/}
    major=${major%/bin}
    [[ $major =~ ^[0-9]+$ ]] || continue
    if ((major > best_major)); then
      best_major=$major
      best=$dir
    fi
  done
  [[ -n $best ]] || return 1
  printf '%s\n' "$best"
}

# Prints the path of a PostgreSQL client tool (psql, pg_isready).
pg_tool() {
  local dir
  if command -v "$1" 2>/dev/null; then
    return 0
  fi
  dir=$(pg_bin_dir) || return 1
  [[ -x "$dir/$1" ]] || return 1
  printf '%s\n' "$dir/$1"
}

have_nats_server() {
  command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]]
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run: $*  (run as root or install sudo)"
  fi
}

# Installs PostgreSQL and nats-server with apt-get when missing.
ensure_services_installed() {
  local missing=()
  pg_bin_dir >/dev/null || missing+=(postgresql)
  have_nats_server || missing+=(nats-server)
  ((${#missing[@]} == 0)) && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    die "missing ${missing[*]}; automatic installation needs Debian/Ubuntu (apt-get); install ${missing[*]} with your package manager"
  fi
  log "installing ${missing[*]} with apt-get"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
  pg_bin_dir >/dev/null || die "PostgreSQL still not found after installing it"
  have_nats_server || die "nats-server still not found after installing it"
}

# True when the PostgreSQL URL $1 answers without a password prompt and its role may
# create roles and databases (what the test harness needs).
pg_usable() {
  local psql
  psql=$(pg_tool psql) || return 1
  PGCONNECT_TIMEOUT=3 "$psql" -X -w -q -A -t "$1" \
    -c 'select rolcreaterole and rolcreatedb from pg_roles where rolname = current_user' \
    2>/dev/null | grep -qx t
}

# True when something accepts PostgreSQL connections on host $1 port $2.
pg_listening() {
  local isready
  if isready=$(pg_tool pg_isready); then
    "$isready" -q -h "$1" -p "$2" -t 3
  else
    # shellcheck disable=SC2016 # $0/$1 expand in the inner bash, on purpose
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
  fi
}

# True when a NATS server with JetStream greets us on host $1 port $2.
nats_usable() {
  local info
  # shellcheck disable=SC2016 # $0/$1 expand in the inner bash, on purpose
  info=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && head -n 1 <&3' "$1" "$2" 2>/dev/null) || return 1
  [[ $info == INFO* && $info == *'"jetstream":true'* ]]
}
