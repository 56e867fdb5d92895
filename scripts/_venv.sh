# Sourced by the other scripts: make sure .venv exists and holds bbnode with its test tools.
# Reinstalls only when pyproject.toml changed since the last install (a stamp file records it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    echo "bbnode: creating $venv" >&2
    "$python" -m venv "$venv"
fi
stamp="$venv/.bbnode-installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    echo "bbnode: installing bbnode and its dependencies into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e "$root[test]"
    touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
