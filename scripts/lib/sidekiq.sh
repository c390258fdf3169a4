# Sourced by the scripts that need Sidekiq: installs Debian's ruby, ruby-sidekiq and
# redis-server (only what is missing), starts a private redis-server on a free loopback port with
# no persistence, exports REDIS_URL, and stops that redis when the calling script exits.
# An EXIT trap set before this file is sourced (scripts/lib/moto.sh sets one) is kept: it runs
# after redis is stopped. A script that sets its own EXIT trap after sourcing this file replaces
# ours, so set such traps first.

sidekiq_missing=()
command -v ruby >/dev/null 2>&1 || sidekiq_missing+=(ruby)
dpkg -s ruby-sidekiq >/dev/null 2>&1 || sidekiq_missing+=(ruby-sidekiq)
{ command -v redis-server && command -v redis-cli; } >/dev/null 2>&1 || sidekiq_missing+=(redis-server)
if ((${#sidekiq_missing[@]})); then
  echo "==> installing ${sidekiq_missing[*]} with apt-get" >&2
  sidekiq_sudo=()
  if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
      sidekiq_sudo=(sudo)
    else
      echo "sidekiq.sh: need root (or sudo) to apt-get install ${sidekiq_missing[*]}" >&2
      exit 1
    fi
  fi
  "${sidekiq_sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${sidekiq_sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${sidekiq_missing[@]}" >&2
fi

mkdir -p target
redis_port=$(ruby -rsocket -e 's = TCPServer.new("127.0.0.1", 0); puts s.addr[1]; s.close')
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  >target/redis.log 2>&1 &
redis_pid=$!

sidekiq_stop_redis() {
  if [[ -n ${redis_pid:-} ]]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=
  fi
}
# `trap -p EXIT` prints `trap -- 'COMMAND' EXIT`; keep COMMAND and run it after ours.
sidekiq_previous_exit_trap() {
  eval "set -- $(trap -p EXIT)"
  printf '%s' "${3:-}"
}
sidekiq_prev_exit_trap=$(sidekiq_previous_exit_trap)
trap 'sidekiq_stop_redis; eval "$sidekiq_prev_exit_trap"' EXIT

export REDIS_URL="redis://127.0.0.1:$redis_port/0"
for _ in $(seq 100); do
  [[ $(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null) == PONG ]] && break
  if ! kill -0 "$redis_pid" 2>/dev/null; then
    echo "redis-server exited at start: see target/redis.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ $(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null) != PONG ]]; then
  echo "redis-server did not answer PING on port $redis_port within 10 s: see target/redis.log" >&2
  exit 1
fi
echo "==> $(redis-server --version | cut -d' ' -f1-3) on $REDIS_URL" >&2
