"""The automatic checks on a proof of destruction before it is stored: the bytes decode as an image
(Pillow, not magic bytes alone), its size, and its perceptual hash (imagehash's pHash) for the
duplicate search. Pure computation on the upload; what the results mean is domain.py's."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import imagehash
from PIL import Image, UnidentifiedImageError

# Formats a phone or camera produces; Pillow reads others too (a PDF, an icon), which no photo is.
PHOTO_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
# More pixels than any phone photo (about 200 megapixels): refused before decoding, as a
# decompression bomb would be.
MAX_PIXELS = 200_000_000


class UnreadableImage(ValueError):
    """The upload is not a photo Pillow can decode; the message says why."""


@dataclass(frozen=True)
class ImageFacts:
    content_type: str
    width: int
    height: int
    phash: int  # 64 bits, unsigned


def inspect_image(data: bytes) -> ImageFacts:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                kind = probe.format or ""
                width, height = probe.size
                if width * height > MAX_PIXELS:
                    raise UnreadableImage(f"the image is too large ({width}x{height} pixels)")
                probe.verify()  # the file's structure, without decoding the pixels
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # the pixels themselves: a truncated file fails here
                phash = int(str(imagehash.phash(image)), 16)
    except UnreadableImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UnreadableImage("the upload is not an image that can be read") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnreadableImage(f"the image is damaged or incomplete: {str(exc)[:200]}") from None
    if kind not in PHOTO_FORMATS:
        raise UnreadableImage(
            f"the upload is a {kind or 'unknown'} file; send a JPEG, PNG, GIF or WebP photo"
        )
    return ImageFacts(PHOTO_FORMATS[kind], width, height, phash)


def signed64(value: int) -> int:
    """An unsigned 64-bit hash as PostgreSQL's signed BIGINT holds it (back: ``& (2**64 - 1)``)."""
    return value - (1 << 64) if value >= 1 << 63 else value
