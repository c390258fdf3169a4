# Sourced by the scripts that need moto: installs moto and the SAM translator (moto-install.sh),
# starts moto on a free loopback port, exports MOTO_ENDPOINT, and stops it when the calling
# script exits. The system tests deploy template.yaml on moto.
# shellcheck source=moto-install.sh
source scripts/lib/moto-install.sh

mkdir -p target
moto_port=$("$moto_venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# moto's server, patched where it differs from AWS in ways the tests would trip on (see the script).
"$moto_venv/bin/python" scripts/lib/moto_server.py -H 127.0.0.1 -p "$moto_port" >target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
export MOTO_ENDPOINT="http://127.0.0.1:$moto_port"
"$moto_venv/bin/python" - "$MOTO_ENDPOINT" <<'PY'
import sys, time, urllib.request
deadline = time.time() + 60
while True:
    try:
        urllib.request.urlopen(sys.argv[1] + "/moto-api/outbox", timeout=2)
        break
    except Exception:
        if time.time() > deadline:
            sys.exit("moto did not start: see target/moto.log")
        time.sleep(0.2)
PY
echo "==> moto $MOTO_VERSION on $MOTO_ENDPOINT"
