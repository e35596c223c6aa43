#include "keel_image_decode.h"
#include <stdlib.h>

void keel_image_release(KeelDecodedImage *image) {
    free(image->pixels);
    image->pixels = NULL;
}
