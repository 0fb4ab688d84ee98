"""Opening a task again moves no array twice: the raw pixel and label endpoints carry an
ETag named after the stored file and answer a matching If-None-Match with 304 (after the
access check, before reading the file); the browser's reload reuses its copy."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.api.test_workspace_api import raw
from tests.api.uploads import url
from tests.factories import AnnotationFactory, ImageFactory, api_client, tiff_bytes, world  # noqa: F401
from tests.ui.workspace_world import HEIGHT, WIDTH, log_in, make_world, open_task, wait_ready


@pytest.mark.django_db
def test_pixels_and_labels_answer_304_to_their_etag_and_only_to_it(world, api_client):  # noqa: F811
    image = world.images[0]
    annotation = AnnotationFactory(assignment=world.assignments["annotator"])
    api_client.force_authenticate(world.users["annotator"])
    for path in (url("world", "images", image.pk, "pixels"),
                 url("world", "annotations", annotation.pk, "labels")):
        first = api_client.get(path, HTTP_ACCEPT_ENCODING="gzip")
        assert first.status_code == 200 and first["Cache-Control"] == "private, no-cache"
        etag = first["ETag"]
        again = api_client.get(path, HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
        other = api_client.get(path, HTTP_IF_NONE_MATCH='"0000-raw1"')
        assert other.status_code == 200 and np.array_equal(raw(other), raw(first))
    # The ETag follows the content: another image has another one.
    second = ImageFactory(project=world.project)
    api_client.force_authenticate(world.users["qa_lead"])
    assert api_client.get(url("world", "images", second.pk, "pixels"))["ETag"] != etag
    # No 304 for someone who may not see the image, whatever they send.
    pixels_etag = api_client.get(url("world", "images", image.pk, "pixels"))["ETag"]
    api_client.force_authenticate(world.users["non_member"])
    assert api_client.get(url("world", "images", image.pk, "pixels"),
                          HTTP_IF_NONE_MATCH=pixels_etag).status_code == 404


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_reload_revalidates_the_pixels_instead_of_downloading_them(live_server, page):
    make_world()
    log_in(page, live_server.url)
    open_task(page, live_server.url)
    before = page.evaluate("[...window.__annotator.displayed(60, 50), ...window.__annotator.displayed(200, 100)]")
    page.reload()
    wait_ready(page)
    entries = page.evaluate("""() => performance.getEntriesByType('resource')
        .filter((e) => e.name.includes('/pixels/')).map((e) => [e.transferSize, e.encodedBodySize])""")
    assert entries, "the pixels were fetched"
    transfer, body = entries[0]
    assert body == 240 * 180 * 2            # the array, from the browser's copy
    assert transfer < 1000                  # only a 304's headers crossed the wire
    after = page.evaluate("[...window.__annotator.displayed(60, 50), ...window.__annotator.displayed(200, 100)]")
    assert after == before


def png_with_every_filter(labels: np.ndarray) -> bytes:
    """A 16-bit grey PNG whose rows use PNG filters 0..4 in turn (what other encoders pick)."""
    rows = labels.astype(">u2").view(np.uint8).reshape(labels.shape[0], -1).astype(np.int32)
    out, prev = [], np.zeros(rows.shape[1], np.int32)
    for y, row in enumerate(rows):
        left = np.concatenate([[0, 0], row[:-2]])
        upleft = np.concatenate([[0, 0], prev[:-2]])
        p = left + prev - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        pred = [np.zeros_like(row), left, prev, (left + prev) // 2, paeth][y % 5]
        out.append(bytes([y % 5]) + ((row - pred) % 256).astype(np.uint8).tobytes())
        prev = row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", labels.shape[1], labels.shape[0], 16, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(out)))
            + chunk(b"IEND", b""))


@pytest.mark.django_db
def test_labels_as_the_stored_png_and_the_fallbacks(world, api_client):  # noqa: F811
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 65535, size=(24, 32)).astype(np.uint16)
    content = png_with_every_filter(labels)
    assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(content))), labels)   # a valid PNG
    annotation = AnnotationFactory(assignment=world.assignments["annotator"], labels=labels, content=content)
    api_client.force_authenticate(world.users["annotator"])
    path = url("world", "annotations", annotation.pk, "labels")
    response = api_client.get(path + "?encoding=png")
    assert response.status_code == 200 and response["X-Array-Encoding"] == "png"
    assert response.content == content and response["X-Array-Shape"] == "1,24,32"
    assert api_client.get(path + "?encoding=png", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    # The raw representation has its own ETag: a PNG's does not validate it.
    assert api_client.get(path, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 200
    bad = api_client.get(path + "?encoding=jpeg")
    assert bad.status_code == 400 and "encoding" in bad.json()
    # Stored as TIFF (ids above 65,535): raw ids, whatever was asked.
    big = np.zeros((24, 32), np.uint32)
    big[2:6, 3:9] = 70000
    other = AnnotationFactory(assignment=world.assignments["annotator"], revision=2, labels=big,
                              content=tiff_bytes(big))
    fallback = api_client.get(url("world", "annotations", other.pk, "labels") + "?encoding=png")
    assert fallback.status_code == 200 and "X-Array-Encoding" not in fallback
    assert np.array_equal(raw(fallback)[0], big)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_workspace_decodes_every_png_filter_of_the_revision_it_edits(live_server, page):
    annotator, project, image, guideline, assignment = make_world()
    labels = np.zeros((HEIGHT, WIDTH), np.uint16)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    for k, (cy, cx) in enumerate(((40, 40), (90, 120), (140, 200), (60, 300 // 2)), start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < 18**2] = k * 9973   # ids that use both bytes
    AnnotationFactory(assignment=assignment, labels=labels, content=png_with_every_filter(labels))
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/annotate/{project.slug}/tasks/{assignment.pk}/")
    page.click("#acknowledge")
    wait_ready(page)
    shown = np.array(page.evaluate("Array.from(window.__annotator.labels.data)"), np.uint32)
    assert np.array_equal(shown.reshape(HEIGHT, WIDTH), labels)
    fetched = page.evaluate("""() => performance.getEntriesByType('resource')
        .filter((e) => e.name.includes('/labels/')).map((e) => e.name)""")
    assert fetched and all(name.endswith("?encoding=png") for name in fetched)
