# Shared by the ci/ scripts: a project-local virtual environment with everything the tests need.
# VENV may be set to reuse another environment; PYTHON picks the interpreter (3.10-3.13).
VENV="${VENV:-$here/.venv}"
PYTHON="${PYTHON:-python3}"

ensure_venv() {
  local stamp="$VENV/.mpy-hil-installed"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  # Reinstall when pyproject.toml changed since the last install.
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[test]"
    touch "$stamp"
  fi
}

# The pinned Node modules of the report (Allure 3, playwright-core), installed when missing or
# older than ci/package-lock.json (npm writes node_modules/.package-lock.json on every install).
ensure_report_tooling() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: install Node.js 20+ and npm (Debian: apt-get install nodejs npm)" >&2
    return 2
  fi
  if [ ! -f ci/node_modules/.package-lock.json ] \
    || [ ci/package-lock.json -nt ci/node_modules/.package-lock.json ]; then
    npm ci --prefix ci --no-audit --no-fund
  fi
}
