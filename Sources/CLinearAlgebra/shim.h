// CBLAS (OpenBLAS, row-major calls) and LAPACKE, the only C numerics the engine uses.
#include <cblas.h>
#include <lapacke.h>
