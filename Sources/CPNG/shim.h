// libpng 1.6 (Debian: libpng-dev); pkg-config adds its include folder.
#include <png.h>
