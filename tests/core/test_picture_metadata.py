"""Pictures leave without their metadata: EXIF (GPS included), XMP, IPTC,
comments, PNG text chunks, thumbnails and data after the end are gone; the
parts a decoder reads are copied byte for byte; an orientation survives."""

from __future__ import annotations

import os
import struct
import time

import pytest

from hitem3d_blender.core import picture_metadata
from hitem3d_blender.core.picture_metadata import PictureUnreadable, exif_orientation, strip
from tests.support import picture_factory as pictures
from tests.support.picture_factory import SECRETS, TINY_JPEG


def png_chunk_types(data: bytes) -> list[bytes]:
    types, pos = [], 8
    while pos < len(data):
        length = struct.unpack_from(">I", data, pos)[0]
        types.append(data[pos + 4:pos + 8])
        pos += 12 + length
    return types


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) up to the first scan; the scan and what follows as one last entry."""
    segments, pos = [], 2
    while pos < len(data):
        marker = data[pos + 1]
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if marker == 0xDA:
            segments.append((marker, data[pos:]))
            break
        segments.append((marker, data[pos + 4:pos + 2 + length]))
        pos += 2 + length
    return segments


def leaked(data: bytes) -> list[bytes]:
    return [secret for secret in SECRETS if secret in data]


# -- PNG -----------------------------------------------------------------------------------------------


def test_a_png_keeps_its_pixels_and_colour_and_loses_text_exif_time_and_what_follows() -> None:
    original = pictures.png_with_metadata()
    assert len(leaked(original)) >= 6  # the file does carry them
    cleaned, kind = strip(original)
    assert kind == "png" and leaked(cleaned) == []
    assert png_chunk_types(cleaned) == [b"IHDR", b"gAMA", b"sRGB", b"IDAT", b"IEND"]
    plain = pictures.png(after_header=[pictures.png_chunk(b"gAMA", struct.pack(">I", 45455)),
                                       pictures.png_chunk(b"sRGB", b"\x00")])
    assert cleaned == plain  # byte for byte what the picture is without its metadata


def test_a_png_without_metadata_is_sent_as_it_is() -> None:
    plain = pictures.png()
    assert strip(plain) == (plain, "png")


def test_an_animated_png_is_sent_as_its_still_picture() -> None:
    actl = pictures.png_chunk(b"acTL", struct.pack(">II", 2, 0))
    fctl = pictures.png_chunk(b"fcTL", bytes(26))
    fdat = pictures.png_chunk(b"fdAT", b"\x00\x00\x00\x01frame")
    cleaned, _ = strip(pictures.png(after_header=[actl, fctl], extra=[fdat]))
    assert png_chunk_types(cleaned) == [b"IHDR", b"IDAT", b"IEND"]


# -- JPEG ----------------------------------------------------------------------------------------------


def test_a_jpeg_loses_exif_xmp_iptc_mpf_comments_thumbnail_and_what_follows() -> None:
    original = pictures.jpeg_with_metadata()
    assert len(leaked(original)) >= 7
    cleaned, kind = strip(original)
    assert kind == "jpg" and leaked(cleaned) == []
    assert cleaned.endswith(b"\xff\xd9")
    markers = [marker for marker, _ in jpeg_segments(cleaned)]
    assert markers[:3] == [0xE0, 0xE1, 0xE2]  # JFIF, the orientation alone, the ICC profile
    jfif = jpeg_segments(cleaned)[0][1]
    assert len(jfif) == 14 and jfif.endswith(b"\x00\x00")  # no thumbnail


def test_what_a_decoder_reads_is_copied_byte_for_byte() -> None:
    cleaned, _ = strip(pictures.jpeg_with_metadata())
    ours = [s for s in jpeg_segments(cleaned) if not 0xE0 <= s[0] <= 0xEF]
    blenders = [s for s in jpeg_segments(TINY_JPEG) if not 0xE0 <= s[0] <= 0xEF]
    assert ours == blenders  # quantisation and Huffman tables, the frame, the scan and the end


@pytest.mark.parametrize("little", [True, False])
@pytest.mark.parametrize("orientation", range(2, 9))
def test_a_photo_taken_upright_stays_upright(orientation: int, little: bool) -> None:
    original = pictures.jpeg_with_metadata(orientation)
    if not little:
        original = original.replace(pictures.exif(orientation), pictures.exif(orientation, little=False))
    cleaned, _ = strip(original)
    [exif] = [payload for marker, payload in jpeg_segments(cleaned) if marker == 0xE1]
    assert exif.startswith(b"Exif\x00\x00") and exif_orientation(exif[6:]) == orientation
    assert len(exif) == 6 + 26  # the orientation and nothing else


def test_a_photo_stored_upright_carries_no_exif_at_all() -> None:
    cleaned, _ = strip(pictures.jpeg_with_metadata(orientation=1))
    assert 0xE1 not in [marker for marker, _ in jpeg_segments(cleaned)]


def test_blenders_own_jpeg_segment_is_dropped_too() -> None:
    cleaned, _ = strip(TINY_JPEG)
    assert b"NeoGeo" in TINY_JPEG and b"NeoGeo" not in cleaned


def test_restart_markers_fill_bytes_and_stuffed_bytes_inside_a_scan_are_kept() -> None:
    sos = TINY_JPEG.index(b"\xff\xda")
    end = TINY_JPEG.rindex(b"\xff\xd9")
    scan = b"\x12\xff\x00\x34\xff\xd0\x56\xff\xd7\x78"
    edited = TINY_JPEG[:sos] + TINY_JPEG[sos:end] + scan + b"\xff\xff\xff\xd9"
    cleaned, _ = strip(edited)
    assert cleaned.endswith(scan + b"\xff\xd9")


# -- WebP ----------------------------------------------------------------------------------------------

VP8L = pictures.riff_chunk(b"VP8L", b"\x2f\x00\x00\x00" + bytes(11))
SIMPLE_WEBP = b"RIFF" + struct.pack("<I", len(VP8L) + 4) + b"WEBP" + VP8L


def test_a_webp_loses_exif_and_xmp_keeps_its_icc_and_its_flags_say_so() -> None:
    original = pictures.webp_with_metadata(SIMPLE_WEBP, orientation=1)
    cleaned, kind = strip(original)
    assert kind == "webp" and leaked(cleaned) == []
    chunks = pictures.webp_chunks(cleaned)
    assert [kind for kind, _ in chunks] == [b"VP8X", b"ICCP", b"VP8L"]
    assert chunks[0][1][0] == 0x20  # ICC only: the EXIF and XMP flags are cleared
    assert struct.unpack_from("<I", cleaned, 4)[0] == len(cleaned) - 8  # nothing after the RIFF


def test_a_webp_keeps_an_orientation_in_an_exif_of_its_own() -> None:
    cleaned, _ = strip(pictures.webp_with_metadata(SIMPLE_WEBP, orientation=8))
    chunks = dict(pictures.webp_chunks(cleaned))
    assert exif_orientation(chunks[b"EXIF"]) == 8 and len(chunks[b"EXIF"]) == 26
    assert chunks[b"VP8X"][0] == 0x20 | 0x08 and leaked(cleaned) == []


def test_a_simple_webp_is_sent_as_it_is() -> None:
    assert strip(SIMPLE_WEBP) == (SIMPLE_WEBP, "webp")


# -- what cannot be followed is not sent -------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"GIF89a....", b"text file named .png", b"\x89PNG\r\n\x1a\n"])
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(PictureUnreadable):
        strip(data)


@pytest.mark.parametrize("make", [pictures.png_with_metadata, pictures.jpeg_with_metadata,
                                  lambda: pictures.webp_with_metadata(SIMPLE_WEBP)])
def test_a_cut_or_damaged_picture_is_refused_never_crashes(make: object) -> None:
    original = make()  # type: ignore[operator]
    for end in range(0, len(original), 3):
        try:
            cleaned, _ = strip(original[:end])
        except PictureUnreadable:
            continue
        assert leaked(cleaned) == []
    for index in range(0, len(original), 7):
        damaged = bytearray(original)
        damaged[index] ^= 0xA5
        try:
            strip(bytes(damaged))
        except PictureUnreadable:
            pass


def test_a_png_chunk_that_lies_about_its_length_is_refused() -> None:
    data = bytearray(pictures.png())
    struct.pack_into(">I", data, 8, 0x7FFFFFF0)
    with pytest.raises(PictureUnreadable, match="runs past the end"):
        strip(bytes(data))


def test_the_messages_say_what_is_wrong_and_what_to_do() -> None:
    with pytest.raises(PictureUnreadable) as caught:
        strip(TINY_JPEG[:200])
    assert str(caught.value).startswith("The picture is damaged (") and "save it again as PNG or JPEG" in str(
        caught.value)


# -- fast enough for 20 MB, on the worker that uploads ------------------------------------------------------


def big_jpeg(size: int) -> bytes:
    """A JPEG whose scan is ``size`` bytes of noise (0xFF stuffed, as in a real scan)."""
    noise = os.urandom(size).replace(b"\xff", b"\xff\x00")
    sos = TINY_JPEG.index(b"\xff\xda")
    header_end = sos + 2 + struct.unpack_from(">H", TINY_JPEG, sos + 2)[0]
    return pictures.jpeg_with_metadata(base=TINY_JPEG[:header_end] + noise + b"\xff\xd9")


def big_png(size: int) -> bytes:
    idat = b"".join(pictures.png_chunk(b"IDAT", os.urandom(65536)) for _ in range(size // 65536))
    plain = pictures.png()
    end = plain.index(b"IEND") - 4
    return plain[:end] + idat + pictures.png_chunk(b"tEXt", b"File\x00secret") + plain[end:]


@pytest.mark.parametrize("make", [big_jpeg, big_png])
def test_a_20_mb_picture_is_stripped_in_well_under_a_second(make: object) -> None:
    data = make(20_000_000)  # type: ignore[operator]
    started = time.perf_counter()
    cleaned, _ = strip(data)
    elapsed = time.perf_counter() - started
    assert len(cleaned) > 19_000_000 and b"secret" not in cleaned[-200:]
    assert elapsed < 1.0, elapsed  # about 0.25 s for a JPEG, 0.01 s for a PNG, alone


def test_orientation_exif_is_a_valid_one_entry_tiff() -> None:
    block = picture_metadata.orientation_exif(6)
    assert len(block) == 26 and exif_orientation(block) == 6
