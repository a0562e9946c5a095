# Sourced by the other scripts: make (once) and use the project's virtual environment in .venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "customer-updates needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$1"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing customer-updates ($1)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  if [ "$1" = "test" ]; then
    .venv/bin/python -m pip install --quiet -e '.[test]'
  else
    # Every extra: the demo, then the README's worker, serve, flower and PostgreSQL commands.
    .venv/bin/python -m pip install --quiet -e '.[all]'
  fi
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
