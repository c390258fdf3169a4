# Sourced by ./scripts/test (and by .ci/run, to install beside the first compile): installs the
# headless Chromium and chromedriver that the console's browser tests drive
# (infra/jobctl/tests/console.rs), from Debian's packages, once. Those tests fail, not skip,
# without them, so the README's test command installs them rather than leaving it to CI.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "==> installing chromium and chromium-driver (the console's browser tests)"
  chromium_sudo=""
  if [ "$(id -u)" -ne 0 ]; then chromium_sudo="sudo"; fi
  if ! command -v apt-get >/dev/null; then
    echo "the console's browser tests need chromium and chromedriver on PATH; install them with your package manager" >&2
    return 1 2>/dev/null || exit 1
  fi
  $chromium_sudo apt-get update -qq
  $chromium_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
fi
