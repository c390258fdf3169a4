# Sourced by the scripts that need moto (scripts/lib/moto.sh sources it): installs the SAM
# translator into its own venv (once) and exports SAM_TRANSLATOR_PYTHON, the interpreter that
# runs scripts/lib/package_template.py. The system tests translate template.yaml with it and
# create the stack on moto's CloudFormation, which does not run the SAM transform itself.
#
# Its own venv, not SAM's (.venv-sam, 800 MB with cargo-lambda and zig, which `./scripts/test`
# does not otherwise need) nor moto's (whose boto3 moves with moto). The translator is the
# version aws-sam-cli 1.170.0 brings (scripts/lib/deploy-tools.sh); ./scripts/check-template
# fails when the two differ.
SAM_TRANSLATOR_VERSION=1.115.0
sam_translator_venv=${JOBKIT_SAM_TRANSLATOR_VENV:-.venv-sam-translator}
sam_translator_pins=("aws-sam-translator==$SAM_TRANSLATOR_VERSION" PyYAML==6.0.4 boto3==1.43.108)
if ! "$sam_translator_venv/bin/python" -m pip freeze 2>/dev/null \
  | grep -qx "aws-sam-translator==$SAM_TRANSLATOR_VERSION"; then
  echo "==> installing ${sam_translator_pins[*]} into $sam_translator_venv"
  python3 -m venv "$sam_translator_venv"
  "$sam_translator_venv/bin/pip" install --quiet --no-compile --disable-pip-version-check "${sam_translator_pins[@]}"
fi
SAM_TRANSLATOR_PYTHON="$(cd "$sam_translator_venv" && pwd)/bin/python"
export SAM_TRANSLATOR_PYTHON
