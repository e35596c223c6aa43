// Debian keeps cblas.h in a multiarch OpenBLAS folder that pkg-config adds to the include path.
#include <cblas.h>
