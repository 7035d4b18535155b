#!/usr/bin/env bash
# Installs Open MPI (Debian's libopenmpi-dev and openmpi-bin) for `mpirun -np N latent train` and the distributed
# tests. Latent itself never needs it: it loads libmpi.so.40 at run time, only when started by mpirun.
set -euo pipefail
packages=(libopenmpi-dev openmpi-bin)
"$(dirname "$0")/install-packages.sh" setup-mpi "${packages[@]}"
command -v mpirun >/dev/null || { echo "setup-mpi: mpirun is still not on PATH after installing ${packages[*]}" >&2; exit 1; }
