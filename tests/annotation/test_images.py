"""Image upload: formats by content, real dtype/channels/pages kept, sha256 deduplication."""

import hashlib

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

from annotation.models import Image
from annotation.services import ImageMetadata, image_upload, images_upload_many
from config.errors import InvalidInput, PermissionDenied
from tests.api.uploads import stored_files, upload, url
from tests.factories import png_bytes, synthetic_image, tiff_bytes

pytestmark = pytest.mark.django_db


def test_multichannel_multipage_tiff_named_png_is_read_by_content(world, media_root):
    data = tiff_bytes(
        np.arange(3 * 2 * 20 * 30, dtype=np.uint16).reshape(3, 2, 20, 30),
        photometric="minisblack",
        metadata={"axes": "ZCYX"},
    )
    result = image_upload(
        actor=world.users["manager"],
        project=world.project,
        upload=ContentFile(data, name="misnamed.png"),
        metadata=ImageMetadata(plate="P7", well="B03", site="2", stain="DAPI", extra={"lot": 4}),
    )
    image = result.image
    assert result.created is True
    assert (image.format, image.width, image.height, image.channels, image.pages, image.dtype) == (
        "tiff",
        30,
        20,
        2,
        3,
        "uint16",
    )
    assert (image.plate, image.well, image.site, image.stain, image.metadata) == (
        "P7",
        "B03",
        "2",
        "DAPI",
        {"lot": 4},
    )
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.file.name.endswith(".tif")
    assert image.file.read() == data


def test_duplicate_sha256_returns_the_existing_image(world, media_root):
    data = png_bytes(synthetic_image(77))
    first = image_upload(
        actor=world.users["manager"], project=world.project, upload=ContentFile(data, name="a.png")
    )
    files = stored_files(media_root)
    again = image_upload(
        actor=world.users["manager"], project=world.project, upload=ContentFile(data, name="b.png")
    )
    assert (first.created, again.created, again.image.pk) == (True, False, first.image.pk)
    assert stored_files(media_root) == files


def test_many_upload_dedupes_within_the_batch(world, media_root):
    data = png_bytes(synthetic_image(78))
    other = png_bytes(synthetic_image(79))
    results = images_upload_many(
        actor=world.users["manager"],
        project=world.project,
        uploads=[
            ContentFile(data, name="a.png"),
            ContentFile(data, name="a2.png"),
            ContentFile(other, name="b.png"),
        ],
    )
    assert [r.created for r in results] == [True, False, True]
    assert results[0].image.pk == results[1].image.pk
    assert Image.objects.filter(project=world.project).count() == 4


def test_byte_cap_is_checked_before_reading(world, media_root):
    with (
        override_settings(CELLCURATE_MAX_IMAGE_BYTES=100),
        pytest.raises(InvalidInput, match="over the 100-byte limit"),
    ):
        image_upload(
            actor=world.users["manager"],
            project=world.project,
            upload=ContentFile(png_bytes(synthetic_image(80)), name="big.png"),
        )
    assert Image.objects.filter(project=world.project).count() == 2


def test_pixel_cap_comes_from_settings(world, media_root):
    with (
        override_settings(CELLCURATE_MAX_IMAGE_PIXELS=100),
        pytest.raises(InvalidInput, match="over the limit of 100"),
    ):
        image_upload(
            actor=world.users["manager"],
            project=world.project,
            upload=ContentFile(png_bytes(synthetic_image(81)), name="big.png"),
        )


def test_only_managers_upload(world, media_root):
    with pytest.raises(PermissionDenied):
        image_upload(
            actor=world.users["qa_lead"],
            project=world.project,
            upload=ContentFile(png_bytes(synthetic_image(82)), name="x.png"),
        )


def test_upload_many_over_the_api_with_metadata(world, api_client, media_root):
    api_client.force_authenticate(world.users["manager"])
    response = api_client.post(
        url("world", "images"),
        {
            "file": [
                upload("a.png", png_bytes(synthetic_image(83))),
                upload("b.jpg", png_bytes(synthetic_image(84))),
            ],
            "plate": "P1",
            "batch": "B",
            "metadata": '{"exposure_ms": 20}',
            "is_gold": "true",
        },
        format="multipart",
    )
    assert response.status_code == 201
    rows = response.json()
    assert [
        (r["created"], r["image"]["format"], r["image"]["plate"], r["image"]["is_gold"])
        for r in rows
    ] == [(True, "png", "P1", True), (True, "png", "P1", True)]
    assert rows[0]["image"]["metadata"] == {"exposure_ms": 20}
    file = api_client.get(url("world", "images", rows[0]["image"]["id"], "file"))
    assert b"".join(file.streaming_content) == png_bytes(synthetic_image(83))


def _ome_tiff(array: np.ndarray, **kwargs) -> bytes:
    import io

    import tifffile

    out = io.BytesIO()
    tifffile.imwrite(out, array, ome=True, **kwargs)
    return out.getvalue()


@pytest.mark.parametrize("tile", [None, (32, 32)])
def test_multichannel_ome_tiff_is_accepted_with_its_pixel_size(world, media_root, tile):
    # Each channel after the first is a TiffFrame in tifffile; the header checks must read
    # the key frame's layout (they once crashed on it and refused every such file).
    pixels = np.arange(3 * 64 * 64, dtype=np.uint16).reshape(3, 64, 64)
    data = _ome_tiff(pixels, tile=tile, metadata={
        "axes": "CYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.5, "PhysicalSizeXUnit": "µm",
        "PhysicalSizeYUnit": "µm"})
    image = image_upload(actor=world.users["manager"], project=world.project,
                         upload=ContentFile(data, name="stack.ome.tif")).image
    assert (image.format, image.width, image.height, image.channels, image.dtype) == (
        "tiff", 64, 64, 3, "uint16")
    assert image.metadata["pixel_size_um"] == {"y": 0.5, "x": 0.65, "unit": "µm"}


def test_pixel_size_given_by_the_uploader_wins_over_the_recorded_one(world, media_root):
    data = _ome_tiff(np.zeros((2, 32, 32), np.uint16),
                     metadata={"axes": "CYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65})
    image = image_upload(actor=world.users["manager"], project=world.project,
                         upload=ContentFile(data, name="s.ome.tif"),
                         metadata=ImageMetadata(extra={"pixel_size_um": 0.3})).image
    assert image.metadata == {"pixel_size_um": 0.3}


def test_uncalibrated_tiff_records_no_pixel_size(world, media_root):
    data = tiff_bytes(np.zeros((20, 30), np.uint16))
    image = image_upload(actor=world.users["manager"], project=world.project,
                         upload=ContentFile(data, name="plain.tif")).image
    assert "pixel_size_um" not in image.metadata
