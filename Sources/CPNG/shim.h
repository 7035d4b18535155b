// libpng: 8-bit grayscale PNG encoding of sample, reconstruction and latent-map grids (simplified write API).
#include <png.h>
