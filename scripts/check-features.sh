#!/usr/bin/env bash
# Compiles and lints the facade (`lobster-vector`) with each optional backend, embedder
# and reranker on its own and with each default feature left out, so the
# "compiled without X" branches build too. The workspace tests turn every
# feature on; this covers the other combinations.
#
# `faiss` is not checked on its own here: it compiles FAISS from source and the
# workspace tests already build and test it.
set -euo pipefail
cd "$(dirname "$0")/.."

DEFAULTS=(candle local openai cohere chroma)
OPTIONAL=(pgvector)

# clippy with -D warnings: an import or helper left unused when a feature is
# off fails the check (only the facade's own code; dependencies are not linted).
check() {
    echo "check-features: $*"
    cargo clippy -p lobster-vector --lib --locked --quiet "$@" -- -D warnings
}

check --no-default-features
for feature in "${DEFAULTS[@]}" "${OPTIONAL[@]}"; do
    check --no-default-features --features "$feature"
done
for left_out in "${DEFAULTS[@]}"; do
    rest=()
    for feature in "${DEFAULTS[@]}"; do
        [[ "$feature" == "$left_out" ]] || rest+=("$feature")
    done
    check --no-default-features --features "$(IFS=,; echo "${rest[*]}")"
done
echo "check-features: all combinations compile"
