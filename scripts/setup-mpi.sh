#!/usr/bin/env bash
# Installs Open MPI (Debian's libopenmpi-dev and openmpi-bin) for `mpirun -np N latent train` and the distributed
# tests. Latent itself never needs it: it loads libmpi.so.40 at run time, only when started by mpirun.
set -euo pipefail
packages=(libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-mpi: installing ${missing[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v mpirun >/dev/null || { echo "setup-mpi: mpirun is still not on PATH after installing ${packages[*]}" >&2; exit 1; }
