"""Raw arrays for the workspace: image samples in their real dtype, label images as ids.

The body is the array's bytes, planar (C, H, W), little-endian; headers say how to view
it (``X-Array-Dtype``, ``X-Array-Shape``). gzip is applied when the client accepts it
(browsers undo it transparently) for label images, which shrink about twentyfold.
"""

from __future__ import annotations

import gzip

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
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


def raw_array_response(
    request, raw: RawArray, *, etag: str | None = None, compress: bool = True
) -> HttpResponse:
    """The array as the response body; gzip (level 1) when asked and worth it.

    Label images shrink ~20x and gzip in ~0.1 s per 2048 x 2048; noisy microscopy samples
    shrink ~20 % and take ~1 s, longer than sending them, so images are sent as they are.
    """
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
        response["ETag"] = f'"{etag}"'
    return response


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
        return raw_array_response(
            request, image_pixels(image=image), etag=image.sha256, compress=False
        )


class AnnotationLabelsView(ProjectScopedView):
    serializer_class = ImageOutput
    content_negotiation_class = IgnoreFormatQueryNegotiation
    renderer_classes = [JSONRenderer]

    @extend_schema(
        responses=_RAW_RESPONSE,
        description="A submitted revision's label image as raw uint16 (uint32 above 65,535) "
        "ids, shape (1, H, W). Blind labeling applies as for the mask download.",
    )
    def get(self, request, slug, pk):
        annotation = selectors.annotation_get(
            user=request.user, project=self.get_project(), annotation_id=pk
        )
        return raw_array_response(
            request, annotation_labels_raw(annotation=annotation), etag=annotation.sha256
        )
