"""Images: list, upload (one or many, multipart), read, download."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from annotation import selectors, services
from annotation.api.base import ProjectScopedView, stored_file_response
from annotation.serializers import ImageFilter, ImageOutput, ImageUploadInput, ImageUploadOutput


class ImageListView(ProjectScopedView):
    serializer_class = ImageOutput
    filter_serializer_class = ImageFilter
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(parameters=[ImageFilter], responses=ImageOutput(many=True))
    def get(self, request, slug):
        return self.paginated(
            selectors.image_list(user=request.user, project=self.get_project(), filters=self.get_filters()),
            ImageOutput,
        )

    @extend_schema(
        request={"multipart/form-data": ImageUploadInput},
        responses={
            201: ImageUploadOutput(many=True), 200: ImageUploadOutput(many=True),
            207: ImageUploadOutput(many=True),
        },
        description="Upload one or more images (repeat the `file` part). Formats are recognised "
        "by content; a file whose sha256 the project already has returns the existing image "
        "(`created: false`). The answer has one entry per file, in order, naming it (`file`). "
        "Every good file is kept: a refused one has `image: null` and `error` saying why, and "
        "the answer is 207 when some files were refused, 400 (naming each file) when all were, "
        "else 201 when an image was created and 200 when all were already there.",
    )
    def post(self, request, slug):
        project = self.get_project()
        data = ImageUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        uploads = fields.pop("file")
        metadata = services.ImageMetadata(
            extra=fields.pop("metadata"), is_gold=fields.pop("is_gold"), **fields
        )
        results = services.images_upload_many(
            actor=request.user, project=project, uploads=uploads, metadata=metadata
        )
        body = [
            {"file": r.name, "created": r.created,
             "image": ImageOutput(r.image, context=self.get_serializer_context()).data
             if r.image is not None else None,
             **({"error": r.error} if r.error else {})}
            for r in results
        ]
        if any(r.error for r in results):
            code = status.HTTP_207_MULTI_STATUS
        elif any(r.created for r in results):
            code = status.HTTP_201_CREATED
        else:
            code = status.HTTP_200_OK
        return Response(body, status=code)


class ImageDetailView(ProjectScopedView):
    serializer_class = ImageOutput

    @extend_schema(responses=ImageOutput)
    def get(self, request, slug, pk):
        image = selectors.image_get(user=request.user, project=self.get_project(), image_id=pk)
        return Response(ImageOutput(image, context=self.get_serializer_context()).data)


class ImageFileView(ProjectScopedView):
    serializer_class = ImageOutput

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, slug, pk):
        image = selectors.image_get(user=request.user, project=self.get_project(), image_id=pk)
        ext = image.file.name.rsplit(".", 1)[-1]
        stem = (image.original_name or image.sha256).rsplit(".", 1)[0]
        return stored_file_response(image.file.name, download_name=f"{stem}.{ext}")
