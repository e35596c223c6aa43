#include "keel_image_decode.h"
#include "limits_check.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    KeelDecodedImage *out;
} ErrorManager;

static void on_error(j_common_ptr info) {
    ErrorManager *errors = (ErrorManager *)info->err;
    char text[JMSG_LENGTH_MAX];
    info->err->format_message(info, text);
    snprintf(errors->out->message, sizeof errors->out->message, "%s", text);
    longjmp(errors->jump, 1);
}

/// libjpeg only warns when the data runs out, then pads the image with grey; Pillow refuses such
/// a file ("image file is truncated"), so that warning is an error here. Other warnings (stray
/// bytes before a marker and the like) are ignored, as Pillow ignores them.
static void on_message(j_common_ptr info, int level) {
    if (level == -1 && info->err->msg_code == JWRN_JPEG_EOF) {
        ErrorManager *errors = (ErrorManager *)info->err;
        snprintf(errors->out->message, sizeof errors->out->message, "the file ends early (truncated)");
        longjmp(errors->jump, 1);
    }
}

/// A progressive JPEG can hold thousands of tiny scans that each cost a pass over the whole
/// image; libjpeg-turbo's own tools stop at 500, far above what any encoder writes.
enum { MAX_SCANS = 500 };

static void on_progress(j_common_ptr info) {
    j_decompress_ptr decompress = (j_decompress_ptr)info;
    if (decompress->input_scan_number > MAX_SCANS) {
        ErrorManager *errors = (ErrorManager *)info->err;
        snprintf(errors->out->message, sizeof errors->out->message,
                 "more than %d progressive scans", MAX_SCANS);
        longjmp(errors->jump, 1);
    }
}

KeelImageStatus keel_decode_jpeg(const uint8_t *data, size_t size, uint32_t max_side,
                                 uint64_t max_pixels, KeelDecodedImage *out) {
    memset(out, 0, sizeof *out);
    struct jpeg_decompress_struct info;
    ErrorManager errors;
    struct jpeg_progress_mgr progress = {.progress_monitor = on_progress};
    info.err = jpeg_std_error(&errors.base);
    errors.base.error_exit = on_error;
    errors.base.emit_message = on_message;
    errors.out = out;
    // Assigned after setjmp and read after a jump, hence volatile.
    uint8_t *volatile pixels = NULL;
    volatile KeelImageStatus failure = KEEL_IMAGE_CORRUPT;
    if (setjmp(errors.jump)) {
        jpeg_destroy_decompress(&info);
        free(pixels);
        return failure;
    }
    jpeg_create_decompress(&info);
    info.progress = &progress;
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);

    out->width = info.image_width;
    out->height = info.image_height;
    if (!keel_image_size_allowed(info.image_width, info.image_height, max_side, max_pixels)) {
        jpeg_destroy_decompress(&info);
        return KEEL_IMAGE_TOO_LARGE;
    }
    if (info.jpeg_color_space != JCS_GRAYSCALE && info.jpeg_color_space != JCS_YCbCr &&
        info.jpeg_color_space != JCS_RGB) {
        const char *name = info.jpeg_color_space == JCS_CMYK ? "CMYK"
                         : info.jpeg_color_space == JCS_YCCK ? "YCCK" : "an unknown colour space";
        snprintf(out->message, sizeof out->message, "its colour space is %s; convert it to RGB", name);
        jpeg_destroy_decompress(&info);
        return KEEL_IMAGE_UNSUPPORTED;
    }
    info.out_color_space = JCS_RGB;
    jpeg_start_decompress(&info);
    if (info.output_components != 3) {
        failure = KEEL_IMAGE_UNSUPPORTED;
        ERREXIT(&info, JERR_CONVERSION_NOTIMPL);
    }

    size_t row_bytes = (size_t)info.output_width * 3;
    pixels = malloc(row_bytes * info.output_height);
    if (pixels == NULL) {
        failure = KEEL_IMAGE_OUT_OF_MEMORY;
        ERREXIT(&info, JERR_OUT_OF_MEMORY);
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = pixels + row_bytes * info.output_scanline;
        jpeg_read_scanlines(&info, &row, 1);
    }
    // No jpeg_finish_decompress: data after the last scanline (or a missing EOI) is not checked.
    jpeg_destroy_decompress(&info);
    out->pixels = pixels;
    return KEEL_IMAGE_OK;
}
