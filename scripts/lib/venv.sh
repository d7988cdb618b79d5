# Shared by scripts/*: create or update .venv with psymatch and its dev extra
# (test tools plus the bench and demo extras: scripts/run needs demo, the suite both).
# Re-installs only when setup.cfg changed since the last install.

# The interpreter for a new .venv: $PYTHON if set; else the distribution's /usr/bin/python3
# when it is 3.11 or newer and can make a venv; else python3 from PATH. A distribution's
# interpreter is built with profile-guided optimisation and link-time optimisation; a
# self-compiled one (pyenv's default build, first on this machine's PATH) is not, and ran
# the simulator about a fifth slower (docs/simulate.md).
venv_python() {
  if [ -n "${PYTHON:-}" ]; then
    echo "$PYTHON"
  elif /usr/bin/python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' \
    2>/dev/null; then
    echo /usr/bin/python3
  else
    echo python3
  fi
}

ensure_venv() {
  local python
  python="$(venv_python)"
  if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $($python --version 2>&1)"
    "$python" -m venv .venv
  fi
  local stamp=.venv/.psymatch-installed
  if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
    echo "installing psymatch into .venv (this takes a few minutes the first time)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    touch "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}

# The production console's proxy (JupyterHub's configurable-http-proxy), from npm into
# console/hub/node_modules; pinned by console/hub/package-lock.json. Needs Node.js and npm.
ensure_console_proxy() {
  local proxy=console/hub/node_modules/.bin/configurable-http-proxy
  if [ -x "$proxy" ] && [ ! console/hub/package-lock.json -nt "$proxy" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null; then
    echo "NOTE: npm is missing: the production console (JupyterHub) cannot start (apt-get install nodejs npm)"
    return 0
  fi
  echo "installing configurable-http-proxy into console/hub (npm ci)"
  npm ci --prefix console/hub --no-audit --no-fund --loglevel=error >/dev/null && touch "$proxy"
}
