# Sourced by the scripts that build for Lambda: installs SAM, cfn-lint, cargo-lambda and zig
# into their own venv (once; SAM pins an older boto3 than moto's) and puts them on PATH.
deploy_venv=${JOBKIT_SAM_VENV:-.venv-sam}
deploy_pins=(aws-sam-cli==1.170.0 cfn-lint==1.58.0 cargo-lambda==1.9.2 ziglang==0.17.1)
if ! "$deploy_venv/bin/python" -m pip freeze 2>/dev/null | grep -qx "cargo-lambda==1.9.2"; then
  echo "==> installing ${deploy_pins[*]} into $deploy_venv"
  python3 -m venv "$deploy_venv"
  "$deploy_venv/bin/pip" install --quiet --no-compile --disable-pip-version-check "${deploy_pins[@]}"
fi
export PATH="$(cd "$deploy_venv" && pwd)/bin:$PATH" SAM_CLI_TELEMETRY=0
