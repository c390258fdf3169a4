# shellcheck shell=bash
# Sourced by the scripts that need graphile-worker: installs Debian's postgresql, nodejs and npm
# (only what is missing) and bench/graphile's npm packages (`npm ci` into
# bench/graphile/node_modules when they are missing or do not match package-lock.json), starts
# a throwaway PostgreSQL cluster in a temporary directory listening on a unix socket only (run
# as `nobody` when this script runs as root: initdb and postgres refuse root), exports
# DATABASE_URL, and stops the cluster and removes its directory when the calling script exits.
# GRAPHILE_SYNCHRONOUS_COMMIT (default off) sets the cluster's synchronous_commit.
# An EXIT trap set before this file is sourced (scripts/lib/sidekiq.sh sets one) is kept: it
# runs after the cluster is stopped. A script that sets its own EXIT trap after sourcing this
# file replaces ours, so set such traps first.

graphile_pg_bin() {
  local bins
  bins=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1)
  [[ -n $bins ]] && dirname "$bins"
}

graphile_missing=()
graphile_pg_bin >/dev/null || graphile_missing+=(postgresql)
command -v node >/dev/null 2>&1 || graphile_missing+=(nodejs)
command -v npm >/dev/null 2>&1 || graphile_missing+=(npm)
if ((${#graphile_missing[@]})); then
  echo "==> installing ${graphile_missing[*]} with apt-get" >&2
  graphile_sudo=()
  if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
      graphile_sudo=(sudo)
    else
      echo "graphile.sh: need root (or sudo) to apt-get install ${graphile_missing[*]}" >&2
      exit 1
    fi
  fi
  "${graphile_sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${graphile_sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${graphile_missing[@]}" >&2
fi
graphile_bin=$(graphile_pg_bin)
if [[ -z $graphile_bin ]]; then
  echo "graphile.sh: no /usr/lib/postgresql/*/bin/initdb after installing postgresql" >&2
  exit 1
fi

if ! npm ls --prefix bench/graphile --omit=dev >/dev/null 2>&1; then
  echo "==> installing bench/graphile's npm packages (npm ci)" >&2
  npm ci --prefix bench/graphile --no-audit --no-fund >&2
fi

# The cluster's files and socket live in one temporary directory, owned by whoever runs it.
graphile_dir=$(mktemp -d "${TMPDIR:-/tmp}/jobkit-graphile.XXXXXX")
graphile_as=()
if ((EUID == 0)); then
  chown nobody: "$graphile_dir"
  graphile_as=(runuser -u nobody --)
fi
# Run a PostgreSQL program as the cluster's owner, from a directory that user can read.
graphile_pg() {
  (cd "$graphile_dir" && "${graphile_as[@]}" "$graphile_bin/$1" "${@:2}")
}

graphile_stop_postgres() {
  if [[ -n ${graphile_dir:-} ]]; then
    if [[ -f $graphile_dir/data/postmaster.pid ]]; then
      graphile_pg pg_ctl -D "$graphile_dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$graphile_dir"
    graphile_dir=
  fi
}
# `trap -p EXIT` prints `trap -- 'COMMAND' EXIT`; keep COMMAND and run it after ours.
# shellcheck disable=SC2120 # its $3 is from `set --`, not an argument
graphile_previous_exit_trap() {
  eval "set -- $(trap -p EXIT)"
  printf '%s' "${3:-}"
}
graphile_prev_exit_trap=$(graphile_previous_exit_trap)
trap 'graphile_stop_postgres; eval "$graphile_prev_exit_trap"' EXIT

graphile_fail() {
  echo "graphile.sh: $1" >&2
  [[ -f $graphile_dir/postgres.log ]] && tail -n 20 "$graphile_dir/postgres.log" >&2
  exit 1
}

# No TCP listener: the socket in $graphile_dir only, trusted (nothing else can reach it).
graphile_pg initdb -D "$graphile_dir/data" -U graphile --auth=trust --no-locale --encoding=UTF8 \
  --no-sync >"$graphile_dir/initdb.log" 2>&1 ||
  { cat "$graphile_dir/initdb.log" >&2; graphile_fail "initdb failed"; }
graphile_pg pg_ctl -D "$graphile_dir/data" -l "$graphile_dir/postgres.log" -w -t 60 \
  -o "-c listen_addresses='' -k $graphile_dir -c synchronous_commit=${GRAPHILE_SYNCHRONOUS_COMMIT:-off}" \
  start >/dev/null || graphile_fail "PostgreSQL did not start"
"$graphile_bin/createdb" -h "$graphile_dir" -U graphile graphile_bench ||
  graphile_fail "createdb graphile_bench failed"

export DATABASE_URL="postgres:///graphile_bench?host=$graphile_dir&user=graphile"
echo "==> PostgreSQL $("$graphile_bin/postgres" --version | awk '{print $3}') on the unix socket in $graphile_dir" \
  "(synchronous_commit=${GRAPHILE_SYNCHRONOUS_COMMIT:-off}), node $(node --version)" >&2
