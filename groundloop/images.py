"""Reading images, one way for the endpoint and the pipelines, under the same limits.

Every reason an image cannot be used (not an image, a format outside the accepted ones, a
label that does not match the bytes, truncated data, a text chunk that inflates past
Pillow's limit, too many bytes or pixels, an aspect ratio the processor would blow up) comes
out as `ImageError("unreadable image: ...")`, never as Pillow's own exception types; over a
size limit it is the subclass `ImageTooLarge` (the endpoint answers 413 for it, 400 for the
rest). Pure: PIL only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

# Pillow's PngImagePlugin.MAX_TEXT_CHUNK (1 MiB per text / ICC chunk after inflating) and
# MAX_TEXT_MEMORY (64 MiB per image) bound what text chunks may cost; past them Pillow raises
# ValueError, which decode_image reports as an ImageError like any other decode failure.

MIME_TYPES = {  # Pillow format -> the data-URL / Content-Type labels that may carry it
    "PNG": ("image/png", "image/apng"),
    "JPEG": ("image/jpeg", "image/jpg", "image/pjpeg"),
    "WEBP": ("image/webp",),
    "GIF": ("image/gif",),
    "BMP": ("image/bmp", "image/x-bmp", "image/x-ms-bmp"),
}


class ImageError(ValueError):
    """An image that cannot be used; the message is "unreadable image: [name: ]reason"."""


class ImageTooLarge(ImageError):
    """Over a size limit: bytes, pixels, aspect ratio or the size after the processor's resize."""


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 8 * 1024 * 1024
    max_pixels: int = 4096 * 4096  # width * height as stored
    # long side / short side: the processor resizes the short side up to its target, so a
    # 1 x 20000 image (20,000 pixels) would become 96 x 1,920,000 before the centre crop
    max_aspect_ratio: float = 20.0
    resize_shortest_edge: int = 0  # the processor's target short side; 0: unknown (aspect ratio alone)
    max_resized_pixels: int = 4096 * 4096  # width * height after that resize
    formats: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "GIF", "BMP")


def resized_size(width: int, height: int, shortest_edge: int) -> tuple[int, int]:
    """(width, height) after a resize of the short side to `shortest_edge`, aspect kept."""
    short, long = min(width, height), max(width, height)
    scaled = (shortest_edge, int(long * shortest_edge / short))
    return scaled if width <= height else (scaled[1], scaled[0])


def _fail(name: str, reason: str, cls: type[ImageError] = ImageError) -> ImageError:
    return cls(f"unreadable image: {name}: {reason}" if name else f"unreadable image: {reason}")


def check_mime(mime: str, formats: tuple[str, ...] = ImageLimits.formats, name: str = "") -> None:
    """Refuse a declared type that is not one of the accepted image formats (svg+xml, ...)."""
    accepted = [m for f in formats for m in MIME_TYPES.get(f, ())]
    if mime.lower() not in accepted:
        raise _fail(name, f"type {mime!r} is not accepted; send one of: {', '.join(f.lower() for f in formats)}")


def check_size(width: int, height: int, limits: ImageLimits, name: str = "") -> None:
    if width < 1 or height < 1:
        raise _fail(name, f"image is {width}x{height}")
    if width * height > limits.max_pixels:
        raise _fail(name, f"image is {width}x{height}; at most {limits.max_pixels} pixels", ImageTooLarge)
    ratio = max(width, height) / min(width, height)
    if ratio > limits.max_aspect_ratio:
        raise _fail(
            name,
            f"image is {width}x{height}, an aspect ratio of {ratio:.0f}:1; at most {limits.max_aspect_ratio:g}:1",
            ImageTooLarge,
        )
    if limits.resize_shortest_edge:
        rw, rh = resized_size(width, height, limits.resize_shortest_edge)
        if rw * rh > limits.max_resized_pixels:
            raise _fail(
                name,
                f"image is {width}x{height}, {rw}x{rh} after the processor's resize; at most "
                f"{limits.max_resized_pixels} pixels",
                ImageTooLarge,
            )


def _palette_on_white(im: Image.Image) -> Image.Image | None:
    """A palette image with transparency, each palette colour composited onto white (the same
    result per pixel as compositing the pixels, at the cost of the palette, not of an RGBA copy)."""
    t = im.info.get("transparency")
    palette = im.getpalette("RGB") or []
    if im.mode != "P" or not palette or not isinstance(t, (int, bytes)):
        return None
    n = len(palette) // 3
    alpha = [255] * n
    for i, a in [(t, 0)] if isinstance(t, int) else enumerate(t):
        if i < n:
            alpha[i] = a
    im.putpalette(
        [round(c * alpha[i // 3] / 255 + 255 * (1 - alpha[i // 3] / 255)) for i, c in enumerate(palette[: 3 * n])]
    )
    del im.info["transparency"]
    return im.convert("RGB")


def _to_rgb(im: Image.Image) -> Image.Image:
    """RGB whatever the mode (L, P, CMYK, I;16, ...); transparency composited onto white.
    Without a copy more than needed: a 4096 x 4096 image is 64 MiB in Pillow."""
    out: Image.Image | None = None
    if "transparency" in im.info:
        out = _palette_on_white(im)
    if out is None and im.mode == "LA":  # composited in grey: a quarter of an RGBA copy
        grey, alpha = im.split()
        white = Image.new("L", im.size, 255)
        white.paste(grey, mask=alpha)
        out = white.convert("RGB")
    if out is None and (im.mode in ("RGBA", "PA") or "transparency" in im.info):
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")
        out = Image.new("RGB", im.size, (255, 255, 255))
        out.paste(rgba, mask=rgba)  # an RGBA mask: its alpha band
    if out is None:
        out = im if im.mode == "RGB" else im.convert("RGB")
    out.info = {}  # text chunks, ICC profile: up to Pillow's text memory, of no use downstream
    return out


def decode_image(
    data: bytes, limits: ImageLimits = ImageLimits(), mime: str | None = None, name: str = ""
) -> Image.Image:
    """The RGB image encoded in `data`, checked against `limits` before its pixels are decoded;
    `mime` (a declared type such as "image/png") must match what the bytes are."""
    if mime is not None:
        check_mime(mime, limits.formats, name)
    if len(data) > limits.max_bytes:
        raise _fail(name, f"{len(data)} bytes; at most {limits.max_bytes}", ImageTooLarge)
    try:
        im = Image.open(io.BytesIO(data), formats=list(limits.formats))
    except Image.DecompressionBombError as e:
        raise _fail(name, str(e), ImageTooLarge) from None
    except UnidentifiedImageError:
        raise _fail(name, f"not an image in an accepted format ({', '.join(limits.formats)})") from None
    except Exception as e:  # noqa: BLE001 - every decoder failure (ValueError, OSError, SyntaxError, ...)
        raise _fail(name, f"{type(e).__name__}: {e}") from None
    try:
        check_size(*im.size, limits, name)
        if mime is not None and mime.lower() not in MIME_TYPES.get(im.format or "", ()):
            raise _fail(name, f"labelled {mime} but the data is {im.format}")
        im.load()
        return _to_rgb(im)  # the data is in memory: no file to close
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise _fail(name, str(e), ImageTooLarge) from None
    except Exception as e:  # noqa: BLE001 - truncated data, text chunks past Pillow's limit, bad modes, ...
        raise _fail(name, f"{type(e).__name__}: {e}") from None


def load_image(source: str | Path | BinaryIO, limits: ImageLimits = ImageLimits()) -> Image.Image:
    """The RGB image in a file (or an open binary stream), as decode_image reads bytes."""
    if hasattr(source, "read"):
        name = str(getattr(source, "name", "") or "stream")
        data = source.read(limits.max_bytes + 1)
    else:
        name = str(source)
        try:
            size = Path(source).stat().st_size
            if size > limits.max_bytes:
                raise _fail(name, f"{size} bytes; at most {limits.max_bytes}", ImageTooLarge)
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise _fail(name, "file not found") from None
        except OSError as e:  # a folder, no permission, an I/O error
            raise _fail(name, f"{type(e).__name__}: {e.strerror or e}") from None
    if not isinstance(data, bytes):
        raise _fail(name, "the stream is not binary")
    return decode_image(data, limits, name=name)
