"""What a file is, from its bytes (relay/attachments/kinds.py), and images made safe
(relay/attachments/images.py). Every sample is made here, in tmp_path."""

from __future__ import annotations

import gzip
import io
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from relay.attachments import images, kinds
from relay.attachments.images import MAX_SIDE, reencode
from relay.attachments.kinds import ALLOWED, Kind, Refused, judge

RED, BLUE = (255, 0, 0), (0, 0, 255)
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(44)
PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(44) + b"PE\x00\x00"
ORIENTATION, GPS_IFD = 0x0112, 0x8825
ROTATE_90_CLOCKWISE = 6  # EXIF orientation: the stored pixels are turned a quarter left


def encoded(image: Image.Image, format: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format, **options)
    return out.getvalue()


def zipped(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            compression = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            archive.writestr(name, content, compress_type=compression)
    return out.getvalue()


def ooxml(family: str) -> bytes:
    main = {"word": "document", "xl": "workbook", "ppt": "presentation"}[family]
    return zipped(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "_rels/.rels": b'<?xml version="1.0"?><Relationships/>',
            f"{family}/{main}.xml": b'<?xml version="1.0"?><root/>',
        }
    )


def odf(kind: str) -> bytes:
    return zipped(
        {
            "mimetype": f"application/vnd.oasis.opendocument.{kind}".encode(),
            "content.xml": b'<?xml version="1.0"?><office:document-content/>',
            "META-INF/manifest.xml": b'<?xml version="1.0"?><manifest:manifest/>',
        }
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with one tiny IDAT: a few bytes on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
        + chunk(b"IEND", b"")
    )


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


SMALL = Image.new("RGB", (8, 6), RED)
ALLOWED_SAMPLES: dict[str, Callable[[], bytes]] = {
    "image/jpeg": lambda: encoded(SMALL, "JPEG"),
    "image/png": lambda: encoded(SMALL, "PNG"),
    "image/gif": lambda: encoded(SMALL, "GIF"),
    "image/webp": lambda: encoded(SMALL, "WEBP"),
    "application/pdf": lambda: PDF,
    "text/plain": lambda: "Un gâteau au chocolat, s'il vous plaît 🎂\n".encode(),
    kinds.DOCX.mime: lambda: ooxml("word"),
    kinds.XLSX.mime: lambda: ooxml("xl"),
    kinds.PPTX.mime: lambda: ooxml("ppt"),
    kinds.ODT.mime: lambda: odf("text"),
    kinds.ODS.mime: lambda: odf("spreadsheet"),
    kinds.ODP.mime: lambda: odf("presentation"),
}


def test_every_allowed_kind_has_a_sample() -> None:
    assert set(ALLOWED_SAMPLES) == ALLOWED


@pytest.mark.parametrize("mime", sorted(ALLOWED_SAMPLES))
@pytest.mark.parametrize("name", ["upload", "cake.pdf", "notes.txt", "page.html"])
def test_each_allowed_kind_is_judged_from_its_bytes_whatever_its_name(
    mime: str, name: str, tmp_path: Path
) -> None:
    kind = judge(write(tmp_path, name, ALLOWED_SAMPLES[mime]()))
    assert kind.mime == mime
    assert kind.image == mime.startswith("image/")


def test_text_with_a_bom_or_opening_with_an_angle_bracket_is_still_text(tmp_path: Path) -> None:
    for content in (b"\xef\xbb\xbfhello\n", b"<alice@example.com> wrote:\n", b"<3 thanks!\n"):
        assert judge(write(tmp_path, "note.txt", content)).mime == "text/plain", content


def polyglot_zip() -> bytes:
    both = {"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"}
    return zipped({"mimetype": b"application/vnd.oasis.opendocument.text", **both})


def encrypted_docx() -> bytes:
    """A docx whose entries say they are encrypted (flag bit 0, local and central)."""
    data = bytearray(ooxml("word"))
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start != -1:
            data[start + flag_offset] |= 0x1
            start = data.find(signature, start + 4)
    return bytes(data)


REFUSED: dict[str, bytes] = {
    "html": b"<!DOCTYPE html><html><body>Hi</body></html>",
    "html after whitespace and a BOM": b"\xef\xbb\xbf \n\t<HTML>\n<p>Hi</p>",
    "html fragment": b"<p>Your order</p>",
    "html comment": b"<!-- hello -->",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    "svg with a slash": b"<svg/onload=alert(1)>",
    "xml": b'<?xml version="1.0"?><note>hi</note>',
    "script tag": b"<script>alert(document.cookie)</script>",
    "javascript with a shebang": b"#!/usr/bin/env node\nrequire('child_process')\n",
    "shell script": b"#!/bin/sh\nrm -rf ~\n",
    "elf": ELF,
    "pe": PE,
    "mach-o": b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + bytes(24),
    "plain zip": zipped({"photo.jpg": b"\xff\xd8\xff", "readme.txt": b"hello"}),
    "empty zip": zipped({}),
    "broken zip": b"PK\x03\x04" + b"\x14\x00" * 20,
    "zip dressed as docx and odt": polyglot_zip(),
    "docx with macros": zipped(
        {
            "[Content_Types].xml": b"<Types/>",
            "word/document.xml": b"<w/>",
            "word/vbaProject.bin": b"x",
        }
    ),
    "odt with basic macros": zipped(
        {"mimetype": b"application/vnd.oasis.opendocument.text", "Basic/Standard/Module1.xml": b"x"}
    ),
    "encrypted docx": encrypted_docx(),
    "gz": gzip.compress(b"hello " * 100),
    "rar": b"Rar!\x1a\x07\x01\x00" + bytes(16),
    "7z": b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24),
    "text with nul": b"hello\x00world\n",
    "invalid utf-8": "Crème brûlée".encode("latin-1"),
    "utf-16 text": "hello".encode("utf-16"),
    "gif-html polyglot": b"GIF89a/*\x01\x00\x01\x00*/=1;<script>alert(1)</script>",
    "jpeg-html polyglot": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00<html><body>hi</body></html>",
    "pdf-html polyglot": b"%PDF-1.4\n<iframe src=//evil.example>",
    "empty": b"",
}


@pytest.mark.parametrize("sample", REFUSED, ids=list(REFUSED))
def test_refused(sample: str, tmp_path: Path) -> None:
    with pytest.raises(Refused) as refused:
        judge(write(tmp_path, "photo.jpg", REFUSED[sample]))
    assert refused.value.reason == "type"
    assert str(refused.value).endswith(".")  # a sentence, not a code


def test_text_is_checked_to_its_end_not_only_its_head(tmp_path: Path) -> None:
    prose = b"All fine here. " * 10_000  # 150 KB, past the first chunk
    assert judge(write(tmp_path, "a.txt", prose)).mime == "text/plain"
    for spoiler in (b"\xff", b"\x00", "é".encode()[:1]):  # the last: cut mid-character
        with pytest.raises(Refused):
            judge(write(tmp_path, "b.txt", prose + spoiler))


def test_a_site_may_allow_fewer_kinds(tmp_path: Path) -> None:
    pdf = write(tmp_path, "price-list.pdf", PDF)
    assert judge(pdf, allowed=frozenset({"application/pdf"})).mime == "application/pdf"
    with pytest.raises(Refused, match="PDF files are not accepted here") as refused:
        judge(pdf, allowed=frozenset({"image/jpeg", "image/png"}))
    assert refused.value.reason == "type"


def reencoded(tmp_path: Path, content: bytes, kind: Kind) -> tuple[Kind, Path]:
    out = tmp_path / "safe"
    return reencode(write(tmp_path, "original", content), out, kind), out


def test_exif_and_gps_are_dropped_and_the_photo_turned_upright(tmp_path: Path) -> None:
    photo = Image.new("RGB", (40, 20), RED)
    photo.paste(BLUE, (20, 0, 40, 20))  # stored: red left, blue right
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[ORIENTATION] = ROTATE_90_CLOCKWISE
    exif[GPS_IFD] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    original = encoded(photo, "JPEG", exif=exif, quality=95)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)  # the sample has GPS

    kind, out = reencoded(tmp_path, original, kinds.JPEG)

    assert kind == kinds.JPEG
    with Image.open(out) as safe:
        assert safe.format == "JPEG"
        assert dict(safe.getexif()) == {}
        assert not safe.getexif().get_ifd(GPS_IFD)
        assert "exif" not in safe.info
        assert safe.size == (20, 40)  # turned a quarter right: red now on top
        assert close(safe.getpixel((10, 5)), RED)
        assert close(safe.getpixel((10, 35)), BLUE)
    assert b"Exif" not in out.read_bytes()
    assert b"PhoneMaker" not in out.read_bytes()


def test_png_text_and_colour_profile_are_dropped(tmp_path: Path) -> None:
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "home address: 1 Main Street")
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    original = encoded(Image.new("RGB", (10, 10), RED), "PNG", pnginfo=text, icc_profile=profile)

    kind, out = reencoded(tmp_path, original, kinds.PNG)

    assert kind == kinds.PNG
    with Image.open(out) as safe:
        assert "Comment" not in safe.info
        assert "icc_profile" not in safe.info
        assert close(safe.getpixel((5, 5)), RED)  # the profile was applied, not mangled
    assert b"Main Street" not in out.read_bytes()


@pytest.mark.parametrize(("width", "height"), [(50_000, 50_000), (7_000, 7_000)])
def test_a_bomb_is_refused_from_its_header_without_decoding(
    width: int, height: int, tmp_path: Path
) -> None:
    bomb = write(tmp_path, "bomb.png", png_header_only(width, height))
    assert bomb.stat().st_size < 1000
    assert judge(bomb) == kinds.PNG  # judging reads no pixels either
    started = time.perf_counter()
    with pytest.raises(Refused, match="million pixels") as refused:
        reencode(bomb, tmp_path / "safe", kinds.PNG)
    assert refused.value.reason == "image"
    # Decoding 2.5 (or 0.05) billion pixels would take seconds and gigabytes.
    assert time.perf_counter() - started < 1
    assert not (tmp_path / "safe").exists()


def test_a_real_image_just_over_the_pixel_limit_is_refused(tmp_path: Path) -> None:
    # Just over the limit in a real, decodable (solid, so small) image.
    over = Image.new("L", (images.MAX_PIXELS // 4000 + 1, 4000))
    with pytest.raises(Refused) as refused:
        reencoded(tmp_path, encoded(over, "PNG"), kinds.PNG)
    assert refused.value.reason == "image"


def noise(width: int, height: int) -> Image.Image:
    return Image.effect_noise((width, height), 64).convert("RGB")


def test_a_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    whole = encoded(noise(200, 200), "JPEG")
    for cut in (len(whole) // 2, len(whole) - 100):
        with pytest.raises(Refused) as refused:
            reencoded(tmp_path, whole[:cut], kinds.JPEG)
        assert refused.value.reason == "image"
        assert not (tmp_path / "safe").exists()


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"GIF89a" + bytes(20), kinds.GIF),
        (b"\x89PNG\r\n\x1a\n" + b"junk" * 10, kinds.PNG),
        (encoded(SMALL, "PNG"), kinds.JPEG),  # a PNG called a JPEG: no other decoder tried
    ],
)
def test_what_pillow_cannot_read_as_its_kind_is_refused(
    content: bytes, kind: Kind, tmp_path: Path
) -> None:
    with pytest.raises(Refused) as refused:
        reencoded(tmp_path, content, kind)
    assert refused.value.reason == "image"


def test_a_big_image_is_scaled_down_keeping_its_shape(tmp_path: Path) -> None:
    big = Image.new("RGB", (6000, 3000), RED)
    kind, out = reencoded(tmp_path, encoded(big, "JPEG"), kinds.JPEG)
    assert kind == kinds.JPEG
    with Image.open(out) as safe:
        assert safe.size == (MAX_SIDE, MAX_SIDE // 2)


def test_an_animated_gif_becomes_a_png_of_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in (RED, BLUE, (0, 255, 0))]
    animated = io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    with Image.open(animated) as check:
        assert check.n_frames == 3

    kind, out = reencoded(tmp_path, animated.getvalue(), kinds.GIF)

    assert kind == kinds.PNG
    assert judge(out) == kinds.PNG
    with Image.open(out) as safe:
        assert safe.format == "PNG"
        assert getattr(safe, "n_frames", 1) == 1
        assert close(safe.convert("RGB").getpixel((8, 8)), RED)


def test_a_cmyk_jpeg_comes_out_as_rgb(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # red in ink
    kind, out = reencoded(tmp_path, encoded(cmyk, "JPEG"), kinds.JPEG)
    assert kind == kinds.JPEG
    with Image.open(out) as safe:
        assert safe.format == "JPEG"
        assert safe.mode == "RGB"
        assert close(safe.getpixel((16, 16)), RED)


def test_a_transparent_webp_keeps_its_transparency(tmp_path: Path) -> None:
    clear = Image.new("RGBA", (16, 16), (0, 0, 255, 0))
    kind, out = reencoded(tmp_path, encoded(clear, "WEBP", lossless=True), kinds.WEBP)
    assert kind == kinds.WEBP
    with Image.open(out) as safe:
        assert safe.format == "WEBP"
        assert safe.mode == "RGBA"
        assert safe.getpixel((8, 8))[3] == 0


def close(pixel: object, expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], expected, strict=True))
