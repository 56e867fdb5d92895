# Sourced by the other scripts: make sure .venv exists and holds bbnode with its test tools
# (and the extras named in $BBNODE_EXTRAS, default "test"). Reinstalls only when
# pyproject.toml changed since the last install of those extras (a stamp file records it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    echo "bbnode: creating $venv" >&2
    "$python" -m venv "$venv"
fi
extras="${BBNODE_EXTRAS:-test}"
stamp="$venv/.bbnode-installed-${extras//,/-}"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    echo "bbnode: installing bbnode and its dependencies ($extras) into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e "$root[$extras]"
    touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
