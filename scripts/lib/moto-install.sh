# Sourced by scripts/lib/moto.sh (and by .ci/run, to install beside the first compile): installs
# moto into its venv and the SAM translator into its own (scripts/lib/sam-translator.sh), once.
# shellcheck source=sam-translator.sh
source scripts/lib/sam-translator.sh
MOTO_VERSION=5.2.5
moto_venv=${JOBKIT_MOTO_VENV:-.venv-moto}
if ! "$moto_venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "==> installing moto $MOTO_VERSION into $moto_venv"
  python3 -m venv "$moto_venv"
  # --no-compile: byte-compiling every module at install took a third of the install's CPU;
  # Python compiles what it imports on first use instead.
  "$moto_venv/bin/pip" install --quiet --no-compile --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
