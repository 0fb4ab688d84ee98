"""Raw arrays for the workspace: image samples in their real dtype, label images as ids.

The body is the array's bytes, planar (C, H, W), little-endian; headers say how to view
it (``X-Array-Dtype``, ``X-Array-Shape``). gzip is applied when the client accepts it
(browsers undo it transparently) for label images, which shrink about twentyfold.

Every array is named by the SHA-256 of its stored file, so its ETag never changes while
the file does not: responses are ``private, no-cache`` (the browser asks again each time,
so a revoked membership is seen at once) and a request whose ``If-None-Match`` names the
current ETag is answered 304 before the file is read or decoded. Reopening a task then
moves and decodes nothing but the page.
"""

from __future__ import annotations

import gzip
import struct

from django.core.files.storage import default_storage
from django.http import HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from annotation import selectors
from annotation.api.annotations import IgnoreFormatQueryNegotiation
from annotation.api.base import ProjectScopedView
from annotation.serializers import ImageOutput
from annotation.services.pixels import RawArray, annotation_labels_raw, image_pixels

_RAW_RESPONSE = {
    (200, "application/octet-stream"): OpenApiResponse(
        OpenApiTypes.BINARY,
        description="The samples, planar (channel, row, column), little-endian; "
        "X-Array-Dtype (numpy name) and X-Array-Shape (C,H,W) say how to view them.",
    )
}


#: Bumped when the raw encoding changes, so browsers drop arrays cached under the old one.
RAW_FORMAT = "raw1"


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _etag(content_sha256: str, encoding: str = RAW_FORMAT) -> str:
    return f'"{content_sha256[:32]}-{encoding}"'


def not_modified(request, content_sha256: str | None, encoding: str = RAW_FORMAT) -> HttpResponse | None:
    """A 304 when the client already holds this array (its If-None-Match names it)."""
    if not content_sha256:
        return None
    etag = _etag(content_sha256, encoding)
    if etag not in parse_etags(request.headers.get("If-None-Match", "")):
        return None
    response = HttpResponseNotModified()
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    response["Vary"] = "Accept-Encoding"
    return response


def raw_array_response(
    request, raw: RawArray, *, etag: str | None = None, compress: bool = True
) -> HttpResponse:
    """The array as the response body; gzip (level 1) when asked and worth it.

    Label images shrink ~20x and gzip in ~0.1 s per 2048 x 2048; noisy microscopy samples
    shrink ~20 % and take ~1 s, longer than sending them, so images are sent as they are.
    """
    cached = not_modified(request, etag)
    if cached is not None:
        return cached
    body = raw.data
    headers = {
        "X-Array-Dtype": raw.dtype,
        "X-Array-Shape": f"{raw.channels},{raw.height},{raw.width}",
        "X-Array-Pages": str(raw.pages),
        "Cache-Control": "private, no-cache",
        "Vary": "Accept-Encoding",
    }
    if compress and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    response = HttpResponse(body, content_type="application/octet-stream")
    for name, value in headers.items():
        response[name] = value
    response["Content-Length"] = str(len(body))
    if etag:
        response["ETag"] = _etag(etag)
    return response


def stored_png_response(name: str, *, sha256: str, height: int, width: int) -> HttpResponse | None:
    """The stored label file itself, when it is a 16-bit grey non-interlaced PNG of this size.

    Decoding it and gzipping the raw ids costs the server ~0.25 s per 2048 x 2048 label
    image, on the path of every task open; the file is already deflated (and smaller than
    the gzipped raw ids), so the browser inflates it and undoes the row filters itself
    (``static/annotator/png.js``). None for anything else (TIFF above 65,535 ids).
    """
    if not name.endswith(".png"):
        return None
    with default_storage.open(name, "rb") as fh:
        content = fh.read()
    if content[:8] != PNG_SIGNATURE or content[12:16] != b"IHDR":
        return None
    png_width, png_height = struct.unpack(">II", content[16:24])
    depth, colour, interlace = content[24], content[25], content[28]
    if (depth, colour, interlace, png_height, png_width) != (16, 0, 0, height, width):
        return None
    response = HttpResponse(content, content_type="image/png")
    response["X-Array-Dtype"] = "uint16"
    response["X-Array-Shape"] = f"1,{height},{width}"
    response["X-Array-Pages"] = "1"
    response["X-Array-Encoding"] = "png"
    response["Cache-Control"] = "private, no-cache"
    response["ETag"] = _etag(sha256, "png")
    response["Content-Length"] = str(len(content))
    return response


def labels_response(request, *, encoding: str, name: str, sha256: str, height: int, width: int,
                    raw) -> HttpResponse:
    """A stored label image for the workspace: 304 when the browser has it, the stored PNG
    itself when asked for (``encoding="png"``) and it is one, else ``raw()`` as raw ids."""
    if encoding == "png":
        cached = not_modified(request, sha256, "png")
        if cached is not None:
            return cached
        stored = stored_png_response(name, sha256=sha256, height=height, width=width)
        if stored is not None:
            return stored
    cached = not_modified(request, sha256)
    if cached is not None:
        return cached
    return raw_array_response(request, raw(), etag=sha256)


class LabelsQuery(serializers.Serializer):
    encoding = serializers.ChoiceField(
        choices=["raw", "png"], required=False, default="raw",
        help_text="raw: the ids as planar little-endian samples (gzip when accepted); png: the "
        "stored 16-bit PNG as it is (X-Array-Encoding: png) where the revision is stored so, "
        "else raw.",
    )


class ImagePixelsView(ProjectScopedView):
    serializer_class = ImageOutput
    content_negotiation_class = IgnoreFormatQueryNegotiation
    renderer_classes = [JSONRenderer]

    @extend_schema(
        responses=_RAW_RESPONSE,
        description="The image's first plane, every channel, in its real dtype (not scaled), "
        "for viewers that do their own window/level.",
    )
    def get(self, request, slug, pk):
        image = selectors.image_get(user=request.user, project=self.get_project(), image_id=pk)
        cached = not_modified(request, image.sha256)
        if cached is not None:
            return cached
        return raw_array_response(
            request, image_pixels(image=image), etag=image.sha256, compress=False
        )


class AnnotationLabelsView(ProjectScopedView):
    serializer_class = ImageOutput
    content_negotiation_class = IgnoreFormatQueryNegotiation
    renderer_classes = [JSONRenderer]

    @extend_schema(
        parameters=[LabelsQuery],
        responses=_RAW_RESPONSE,
        description="A submitted revision's label image as raw uint16 (uint32 above 65,535) "
        "ids, shape (1, H, W). Blind labeling applies as for the mask download.",
    )
    def get(self, request, slug, pk):
        query = LabelsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        annotation = selectors.annotation_get(
            user=request.user, project=self.get_project(), annotation_id=pk
        )
        return labels_response(request, encoding=query.validated_data["encoding"],
                               name=annotation.mask.name, sha256=annotation.sha256,
                               height=annotation.height, width=annotation.width,
                               raw=lambda: annotation_labels_raw(annotation=annotation))
