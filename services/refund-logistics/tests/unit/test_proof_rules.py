"""The proof of destruction's checks and review policy (domain.py) and what Pillow and imagehash
measure (proof_checks.py), free of I/O."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from PIL import Image, ImageFilter

from refund_logistics.domain import (
    DUPLICATE_MAX_DISTANCE,
    CaseConflict,
    check_new_proof,
    check_reviewable,
    hash_bands,
    hash_distance,
    is_duplicate,
    proof_needs_review,
    size_problem,
)
from refund_logistics.proof_checks import UnreadableImage, inspect_image, signed64


def _photo(seed: int, size: tuple[int, int] = (400, 300), kind: str = "JPEG") -> bytes:
    noise = bytes((seed * 7919 + i * 104729) % 251 for i in range(16 * 12))
    image = Image.frombytes("L", (16, 12), noise).resize(size, Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.convert("RGB").save(out, kind)
    return out.getvalue()


def test_a_photo_is_measured_and_its_type_read_from_its_content() -> None:
    facts = inspect_image(_photo(1, kind="PNG"))
    assert (facts.content_type, facts.width, facts.height) == ("image/png", 400, 300)
    assert 0 <= facts.phash < 1 << 64


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello", "not an image that can be read"),
        (_photo(2)[:400], "damaged or incomplete"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image that can be read"),
    ],
)
def test_what_does_not_decode_is_unreadable(data: bytes, message: str) -> None:
    with pytest.raises(UnreadableImage, match=message):
        inspect_image(data)


def test_an_image_format_no_camera_makes_is_refused() -> None:
    out = io.BytesIO()
    Image.new("RGB", (300, 300), "red").save(out, "BMP")
    with pytest.raises(UnreadableImage, match="BMP file; send a JPEG, PNG, GIF or WebP"):
        inspect_image(out.getvalue())


def test_a_resized_recompressed_copy_is_a_duplicate_and_another_photo_is_not() -> None:
    original = inspect_image(_photo(3)).phash
    copy_image = Image.open(io.BytesIO(_photo(3))).resize((300, 225)).filter(ImageFilter.BLUR)
    out = io.BytesIO()
    copy_image.save(out, "JPEG", quality=60)
    copy = inspect_image(out.getvalue()).phash
    assert is_duplicate(original, copy), hash_distance(original, copy)
    assert not is_duplicate(original, inspect_image(_photo(4)).phash)


def test_hashes_within_the_duplicate_distance_share_a_band() -> None:
    h = 0x0123_4567_89AB_CDEF
    assert hash_bands(h) == (0xCDEF, 0x89AB, 0x4567, 0x0123)
    flipped = h ^ (1 << 0) ^ (1 << 17) ^ (1 << 34)  # three bits, in three bands
    assert hash_distance(h, flipped) == DUPLICATE_MAX_DISTANCE
    assert set(hash_bands(h)) & set(hash_bands(flipped))


def test_the_hash_fits_a_signed_bigint_and_back() -> None:
    for value in (0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1):
        stored = signed64(value)
        assert -(1 << 63) <= stored < 1 << 63 and stored & ((1 << 64) - 1) == value


def test_a_photo_smaller_than_the_minimum_on_its_shorter_side_is_refused() -> None:
    assert size_problem(640, 480, 200) is None and size_problem(200, 2000, 200) is None
    assert size_problem(199, 2000, 200) == (
        "the photo is 199x2000 pixels; it must be at least 200 pixels on its shorter side"
    )


@pytest.mark.parametrize(
    ("flags", "value", "limit", "review"),
    [
        ([], Decimal("39.98"), Decimal("100"), False),
        ([], Decimal("100.00"), Decimal("100"), False),
        ([], Decimal("100.01"), Decimal("100"), True),
        ([{"flag": "duplicate_photo"}], Decimal("1.00"), Decimal("100"), True),
        ([], Decimal("0.00"), Decimal("0"), True),  # 0: every proof is reviewed
    ],
)
def test_the_review_policy(flags: list, value: Decimal, limit: Decimal, review: bool) -> None:
    assert proof_needs_review(flags, value, limit) is review


def test_a_new_photo_is_taken_only_after_a_rejection_and_not_the_rejected_one() -> None:
    check_new_proof(None, None, False)
    check_new_proof("rejected", "blurry", same_photo=False)
    with pytest.raises(CaseConflict, match=r"not accepted \(blurry\); please upload a new one"):
        check_new_proof("rejected", "blurry", same_photo=True)
    with pytest.raises(CaseConflict, match="being reviewed"):
        check_new_proof("pending_review", None, same_photo=False)
    with pytest.raises(CaseConflict, match="already received"):
        check_new_proof("accepted", None, same_photo=False)


def test_only_a_proof_under_review_can_be_decided() -> None:
    check_reviewable("review", "pending_review")
    with pytest.raises(CaseConflict, match="no proof of destruction to review"):
        check_reviewable("proof", None)
    with pytest.raises(CaseConflict, match="the proof is accepted, not awaiting review"):
        check_reviewable("payment", "accepted")
