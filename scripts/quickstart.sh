#!/usr/bin/env bash
# The main job end to end on a fresh machine: fetch the real model and
# ontologies, build the release binary, build the MONDO, UBERON and Cell
# Ontology collections in the default store, and answer example searches.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p lobster-vector-cli
bin=target/release/lobster-vector
"$bin" build --ontology all
for q in "heart attack:disease" "CD8+ T cells:cell_type" "colon:tissue"; do
  echo
  echo "\$ lobster-vector search \"${q%%:*}\" --ontology ${q##*:} -k 3"
  "$bin" search "${q%%:*}" --ontology "${q##*:}" -k 3
done
