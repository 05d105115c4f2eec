#!/usr/bin/env bash
# Installs the system packages the full workspace build needs beyond a Rust
# toolchain: cmake and a BLAS (OpenBLAS) for the FAISS backend, which compiles
# FAISS from source. Idempotent; uses Debian's apt-get (as root, or via sudo).
set -euo pipefail

have_blas() {
  for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib; do
    [ -e "$d/libblas.so" ] && [ -e "$d/liblapack.so" ] && return 0
  done
  return 1
}

if command -v cmake >/dev/null 2>&1 && have_blas; then
  echo "build-deps: cmake and BLAS/LAPACK already installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "build-deps: install cmake and an OpenBLAS development package (libblas.so, liblapack.so) with your package manager" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo -n"
fi
echo "build-deps: installing cmake libopenblas-dev"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends cmake libopenblas-dev >/dev/null ||
  { $sudo apt-get update -qq && $sudo apt-get install -y --no-install-recommends cmake libopenblas-dev >/dev/null; }
echo "build-deps: done"
