#!/usr/bin/env bash
# Builds the `lobster.vector` wheel from this checkout and runs the Python
# suites in a fresh virtual environment: the package's, and the MCP server's
# with the official `mcp` client (the real MiniLM and Cell Ontology from
# `bash scripts/setup.sh`; each suite builds its own store).
#
#   bash scripts/python-tests.sh [pytest args]
#
# LOBSTER_WHEEL_PROFILE: the Cargo profile of the wheel (default `dev`, whose
# optimised dependencies the test build has mostly compiled already;
# `release` for benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venvs=${LOBSTER_PY_VENVS:-$root/target/python}
profile=${LOBSTER_WHEEL_PROFILE:-dev}
wheels=$root/target/wheels

echo "python-tests: build tools (maturin) in $venvs/build"
python3 -m venv "$venvs/build"
"$venvs/build/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.9,<2"

echo "python-tests: building the wheel (profile $profile)"
rm -f "$wheels"/lobster_vector-*.whl
"$venvs/build/bin/maturin" build --locked --profile "$profile" \
    --manifest-path crates/lobster-vector-py/Cargo.toml --out "$wheels" --compatibility linux

echo "python-tests: fresh test environment in $venvs/test"
python3 -m venv --clear "$venvs/test"
# pytest, and the official MCP client SDK for the MCP server's tests.
"$venvs/test/bin/python" -m pip install -q --disable-pip-version-check "pytest>=7" "mcp>=2.3,<3" "sssom>=0.4.21,<0.5"
"$venvs/test/bin/python" -m pip install -q --disable-pip-version-check "$wheels"/lobster_vector-*.whl

# The MCP tests drive the CLI binary that `cargo test` built.
export LOBSTER_VECTOR_BIN=${LOBSTER_VECTOR_BIN:-$root/target/debug/lobster-vector}

# Run from outside the source tree so the installed package is what is imported.
cd "$venvs"
"$venvs/test/bin/python" -m pytest -q -p no:cacheprovider \
    "$root/crates/lobster-vector-py/tests" "$root/crates/lobster-vector-serve/tests" "$@"
