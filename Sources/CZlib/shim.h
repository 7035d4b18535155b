// zlib: gzip decoding of IDX files and CRC-32 checksums of checkpoints.
#include <zlib.h>
