#!/usr/bin/env python3
"""Writes Tests/KeelImagesTests/Fixtures: small PNG/JPEG files in every colour type the decoder
handles, the pixels Pillow decodes from each (`Image.open(f).convert("RGB")`), resized and
preprocessed references computed by Pillow and NumPy, and malformed files the decoder must refuse.

Usage: python3 tools/gen_image_fixtures.py   (needs pillow and numpy; deterministic output)
       python3 tools/gen_image_fixtures.py --samples DIR
           rewrites samples/ from scikit-image's data folder DIR (`pip download scikit-image
           --no-deps`, unzip the wheel, DIR = skimage/data); see samples/README.md for licences.
"""
import argparse
import io
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "KeelImagesTests", "Fixtures")
SAMPLES = os.path.join(ROOT, "samples")
rng = np.random.default_rng(7)


def smooth_rgb(height, width):
    """A gradient with noise: compressible like a photo, but every channel and pixel differs."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / max(width - 1, 1), y * 255 / max(height - 1, 1),
                     (x + y) * 127 / max(width + height - 2, 1)], axis=-1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def png_chunk(kind, payload):
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def raw_png(width, height, bit_depth, color_type, rows):
    """A PNG written by hand, for what Pillow cannot save (16-bit RGB) and for crafted headers."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    data = b"".join(b"\x00" + row for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(data))
            + png_chunk(b"IEND", b""))


def adam7_png(pixels):
    """An interlaced 8-bit RGB PNG (Pillow cannot write one): the seven Adam7 passes in order."""
    height, width, _ = pixels.shape
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    data = b""
    for x0, y0, dx, dy in passes:
        block = pixels[y0::dy, x0::dx]
        if block.size:
            data += b"".join(b"\x00" + row.tobytes() for row in block)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(data))
            + png_chunk(b"IEND", b""))


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as file:
        file.write(data)


def pillow_bytes(image, format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def pillow_rgb(name):
    with Image.open(os.path.join(OUT, name)) as image:
        return np.asarray(image.convert("RGB"))


def main():
    os.makedirs(OUT, exist_ok=True)
    for stale in os.listdir(OUT):
        os.remove(os.path.join(OUT, stale))
    decoded = []  # manifest entries: file, reference, size, tolerance

    def add(name, data, tolerance, reference=None, note=""):
        write(name, data)
        pixels = pillow_rgb(name) if reference is None else reference
        height, width, _ = pixels.shape
        write(name + ".rgb", np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
        decoded.append({"file": name, "width": width, "height": height, "tolerance": tolerance,
                        "note": note})

    rgb = smooth_rgb(23, 37)
    add("rgb.png", pillow_bytes(Image.fromarray(rgb), "PNG"), 0)
    add("grey.png", pillow_bytes(Image.fromarray(rgb[..., 1]), "PNG"), 0)
    alpha = np.dstack([rgb, rng.integers(0, 256, rgb.shape[:2], dtype=np.uint8)])
    add("rgba.png", pillow_bytes(Image.fromarray(alpha, "RGBA"), "PNG"), 0,
        note="alpha dropped, not composited (Pillow's convert('RGB'))")
    add("grey_alpha.png", pillow_bytes(Image.fromarray(alpha[..., 1:3]
                                                       .copy(), "LA"), "PNG"), 0)
    palette = Image.fromarray(rgb).quantize(colors=16)
    add("palette.png", pillow_bytes(palette, "PNG", bits=4), 0, note="4-bit palette")
    add("palette_transparency.png", pillow_bytes(palette, "PNG", transparency=3), 0,
        note="palette with tRNS: colours kept, transparency ignored")
    add("rgb_transparency.png", pillow_bytes(Image.fromarray(rgb), "PNG", transparency=(10, 20, 30)), 0,
        note="RGB with tRNS")
    add("grey_transparency.png", pillow_bytes(Image.fromarray(rgb[..., 2]), "PNG", transparency=40), 0,
        note="grey with tRNS")
    add("bilevel.png", pillow_bytes(Image.fromarray(rgb[..., 0] > 128), "PNG"), 0, note="1-bit grey")
    deep = rng.integers(0, 65536, (9, 13, 3), dtype=np.uint16)
    add("rgb16.png", raw_png(13, 9, 16, 2, [row.astype(">u2").tobytes() for row in deep]), 0,
        note="16-bit RGB: high byte, as Pillow")
    # Pillow clips 16-bit grey to 255 when converting I;16 to RGB (most photos turn white); the
    # decoder keeps the high byte, as for 16-bit RGB, so this reference is computed directly.
    grey16 = rng.integers(0, 65536, (7, 11), dtype=np.uint16)
    add("grey16.png", raw_png(11, 7, 16, 0, [row.astype(">u2").tobytes() for row in grey16]), 0,
        reference=np.repeat((grey16 >> 8).astype(np.uint8)[..., None], 3, axis=2),
        note="16-bit grey: high byte (Pillow would clip at 255)")

    add("interlaced.png", adam7_png(rgb), 0, note="Adam7 interlaced")

    photo = smooth_rgb(40, 56)
    add("baseline_420.jpg", pillow_bytes(Image.fromarray(photo), "JPEG", quality=85), 1)
    add("baseline_444.jpg", pillow_bytes(Image.fromarray(photo), "JPEG", quality=90, subsampling=0), 1)
    add("progressive.jpg", pillow_bytes(Image.fromarray(photo), "JPEG", quality=80, progressive=True), 1)
    add("grey.jpg", pillow_bytes(Image.fromarray(photo[..., 0]), "JPEG", quality=85), 1)
    add("odd_size_422.jpg", pillow_bytes(Image.fromarray(smooth_rgb(17, 29)), "JPEG", quality=75,
                                         subsampling=1), 1)
    add("jpeg_named.png", pillow_bytes(Image.fromarray(photo), "JPEG", quality=85), 1,
        note="JPEG content under a .png name: recognised by its bytes")

    # Resize and preprocessing references, from the PNG pixels (decoded exactly).
    source = smooth_rgb(47, 61)
    write("resize_source.png", pillow_bytes(Image.fromarray(source), "PNG"))
    resized_cases = []
    for width, height in [(24, 32), (20, 15), (61, 47), (90, 70)]:
        planes = [np.asarray(Image.fromarray(source[..., c].astype(np.float32))
                             .resize((width, height), Image.Resampling.BILINEAR)) for c in range(3)]
        resized = np.stack(planes, axis=-1).astype(np.float32)
        name = f"resize_{width}x{height}"
        write(name + ".f32", resized.astype("<f4").tobytes())
        rounded = np.asarray(Image.fromarray(source).resize((width, height), Image.Resampling.BILINEAR))
        write(name + ".rgb", rounded.tobytes())
        resized_cases.append({"name": name, "width": width, "height": height})

        if (width, height) == (24, 32):
            keras = resized[..., ::-1].copy()  # keras.applications.vgg16.preprocess_input, caffe mode
            for channel, mean in enumerate([103.939, 116.779, 123.68]):
                keras[..., channel] -= mean
            write("keras_vgg16_nhwc.f32", keras.astype("<f4").tobytes())
            # torchvision: ToTensor (/255 in float32) then Normalize, channels first.
            chw = resized.transpose(2, 0, 1) / np.float32(255)
            mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
            std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
            write("torch_nchw.f32", ((chw - mean) / std).astype("<f4").tobytes())

    # Files the decoder must refuse with a one-line error.
    jpeg = pillow_bytes(Image.fromarray(photo), "JPEG", quality=85)
    write("truncated.jpg", jpeg[: len(jpeg) // 2])
    png = pillow_bytes(Image.fromarray(rgb), "PNG")
    write("truncated.png", png[: len(png) - 40])
    # 520 copies of one small progressive scan: valid for Pillow, but over the 500-scan limit.
    progressive = pillow_bytes(Image.fromarray(photo), "JPEG", quality=80, progressive=True)
    scans = [index for index in range(len(progressive) - 1) if progressive[index:index + 2] == b"\xff\xda"]
    smallest = min(range(len(scans) - 1), key=lambda i: scans[i + 1] - scans[i])
    scan = progressive[scans[smallest]:scans[smallest + 1]]
    write("many_scans.jpg", progressive[:scans[-1]] + scan * 520 + progressive[scans[-1]:])
    write("cmyk.jpg", pillow_bytes(Image.fromarray(photo).convert("CMYK"), "JPEG", quality=85))
    write("text.png", b"hello, this is not an image\n")
    write("empty.png", b"")
    write("header_only.png", b"\x89PNG\r\n\x1a\n")
    # A valid header declaring 30000x30000 RGB (2.7 GB of pixels) with one tiny IDAT.
    huge = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + png_chunk(b"IEND", b""))
    write("huge_header.png", huge)
    # The same for JPEG: the first SOF marker's height and width patched to 30000.
    sof = jpeg.index(b"\xff\xc0")
    write("huge_header.jpg", jpeg[: sof + 5] + struct.pack(">HH", 30000, 30000) + jpeg[sof + 9:])

    manifest = {"decoded": decoded, "resize_source": "resize_source.png", "resized": resized_cases}
    with open(os.path.join(OUT, "manifest.json"), "w") as file:
        json.dump(manifest, file, indent=1)
        file.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {OUT}")


def shrink(image, longest):
    """Downscaled with Lanczos so the bundled photos stay sharp at a few tens of KB."""
    scale = longest / max(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.LANCZOS)


def samples(data):
    os.makedirs(SAMPLES, exist_ok=True)

    def photo(name):
        with Image.open(os.path.join(data, name)) as image:
            return image.convert(image.mode if image.mode == "L" else "RGB")

    for source, target in [("chelsea.png", "chelsea.jpg"), ("coffee.png", "coffee.jpg"),
                           ("astronaut.png", "astronaut.jpg"), ("rocket.jpg", "rocket.jpg")]:
        shrink(photo(source), 256).save(os.path.join(SAMPLES, target), "JPEG", quality=88)
    shrink(photo("camera.png"), 256).save(os.path.join(SAMPLES, "camera_grey.png"), "PNG", optimize=True)
    # An RGBA cut-out (alpha fades towards the corners): Keel drops alpha, keeping the photo.
    cat = shrink(photo("chelsea.png"), 160)
    y, x = np.mgrid[0:cat.height, 0:cat.width]
    distance = np.hypot((x - cat.width / 2) / cat.width, (y - cat.height / 2) / cat.height)
    alpha = np.clip(255 * (1.2 - 2 * distance), 0, 255).astype(np.uint8)
    cutout = np.dstack([np.asarray(cat), alpha])
    Image.fromarray(cutout, "RGBA").save(os.path.join(SAMPLES, "chelsea_rgba.png"), "PNG", optimize=True)
    shrink(photo("coffee.png"), 160).quantize(colors=64).save(
        os.path.join(SAMPLES, "coffee_palette.png"), "PNG", optimize=True)
    for name in sorted(os.listdir(SAMPLES)):
        print(f"{name}: {os.path.getsize(os.path.join(SAMPLES, name))} bytes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", metavar="DIR", help="rewrite samples/ from scikit-image's data folder")
    arguments = parser.parse_args()
    if arguments.samples:
        samples(arguments.samples)
    else:
        main()
