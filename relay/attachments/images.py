"""Images made safe to show: decoded and encoded afresh by Pillow, so that nothing of the
sender's file survives but its pixels: no EXIF (and so no GPS), no XMP, no comments, no
trailing payload, no second format hiding in the same bytes.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

from PIL import Image, ImageCms, ImageOps

from relay.attachments.kinds import GIF, JPEG, PNG, WEBP, Kind, Refused

# A 40-megapixel photo is bigger than any phone takes today; decoded as RGBA it already
# needs 160 MB. Anything larger is refused before a pixel is decoded.
MAX_PIXELS = 40_000_000
# Big enough for a full-screen look on a 4K display, small enough to send quickly.
MAX_SIDE = 4096
JPEG_QUALITY = 85  # visually lossless for photos, about a tenth of the raw size

# Pillow's own guard: it warns above MAX_IMAGE_PIXELS and raises above twice that. We
# check the size ourselves first, and make the warning an error too as a second lock.
# Process-wide on purpose: reencode runs in threads, and warnings.catch_warnings is not
# thread-safe.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

# Pillow format names, so that a file judged a PNG is decoded by the PNG plugin only and
# never handed to another (EPS, for one, would run Ghostscript).
FORMATS = {JPEG.mime: "JPEG", PNG.mime: "PNG", GIF.mime: "GIF", WEBP.mime: "WEBP"}
# Every frame of an animated GIF would need decoding, disposing and bounding again (and
# an animation can hide a bomb in frame 900); its first frame as a PNG is honest about
# what is shown and cannot surprise. Animated WebP and APNG keep their first frame too.
WRITTEN = {JPEG.mime: JPEG, PNG.mime: PNG, GIF.mime: PNG, WEBP.mime: WEBP}
# The modes each written format stores as they are; any other is converted to RGB(A).
KEPT_MODES = {
    JPEG.mime: {"L", "RGB"},
    PNG.mime: {"1", "L", "LA", "I", "I;16", "RGB", "RGBA"},
    WEBP.mime: {"RGB", "RGBA"},
}
SRGB = ImageCms.createProfile("sRGB")

# What a damaged or hostile file makes Pillow raise while opening, verifying or decoding.
BROKEN = (OSError, SyntaxError, ValueError, EOFError, IndexError)


def reencode(src: Path, dst: Path, kind: Kind) -> Kind:
    """Write the image at `src` afresh into `dst`, upright, at most MAX_SIDE on a side and
    without metadata; return the kind written. Refused("image") if it cannot be decoded
    whole or is larger than MAX_PIXELS."""
    if kind.mime not in FORMATS:
        raise ValueError(f"reencode expects one of {sorted(FORMATS)}, got {kind.mime}")
    try:
        return _write(src, dst, kind)
    except BaseException:
        dst.unlink(missing_ok=True)  # never half an image
        raise


def _write(src: Path, dst: Path, kind: Kind) -> Kind:
    written = WRITTEN[kind.mime]
    try:
        _verify(src, kind)
        with Image.open(src, formats=[FORMATS[kind.mime]]) as opened:
            _check_size(opened)
            _draft(opened)
            image = ImageOps.exif_transpose(opened)  # decodes, the first frame only
        image = _to_srgb(image, written)
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        image.info = {}  # PNG would otherwise carry over the ICC profile, text chunks
        _save(image, dst, written)
    except Refused:  # a ValueError too, but already the right one
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise Refused("image", _too_big_message()) from error
    except BROKEN as error:
        raise Refused("image", "The image is damaged or incomplete.") from error
    return written


def _verify(src: Path, kind: Kind) -> None:
    """Pillow's structural check (chunk checksums for PNG) without decoding pixels."""
    with Image.open(src, formats=[FORMATS[kind.mime]]) as image:
        _check_size(image)
        image.verify()


def _check_size(image: Image.Image) -> None:
    """Refuse from the header's size, before a pixel is decoded."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise Refused("image", _too_big_message())


def _draft(image: Image.Image) -> None:
    """Let a big JPEG decode at 1/2, 1/4 or 1/8 of its size when that still covers the
    final one: less memory and time. Other formats ignore the request."""
    width, height = image.size
    scale = max(width, height) / MAX_SIDE
    if scale > 1:
        image.draft(None, (math.ceil(width / scale), math.ceil(height / scale)))


def _too_big_message() -> str:
    return f"The image has more than {MAX_PIXELS // 1_000_000} million pixels."


def _to_srgb(image: Image.Image, written: Kind) -> Image.Image:
    """The image in a mode the written format keeps, its colours in sRGB.

    An embedded ICC profile is applied rather than kept (a Display P3 photo from a phone
    would look dull without it, a CMYK one wrong), then dropped with the other metadata.
    """
    alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    target = "RGBA" if alpha and written is not JPEG else "RGB"
    profile = image.info.get("icc_profile")
    if profile and image.mode in ("RGB", "RGBA", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            converted = ImageCms.profileToProfile(image, source, SRGB, outputMode=target)
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None  # a broken profile: plain conversion below
        if converted is not None:
            return converted
    if image.mode in KEPT_MODES[written.mime]:
        return image
    return image.convert(target)


def _save(image: Image.Image, dst: Path, written: Kind) -> None:
    if written is JPEG:
        image.save(dst, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    elif written is WEBP:
        image.save(dst, format="WEBP", quality=JPEG_QUALITY)
    else:
        image.save(dst, format="PNG")
