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
