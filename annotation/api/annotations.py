"""Annotations: submit a label mask (Idempotency-Key, If-Match), list, read, download."""

from __future__ import annotations

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from annotation import selectors, services
from annotation.api.base import ProjectScopedView, stored_file_response
from annotation.serializers import AnnotationFilter, AnnotationOutput, AnnotationSubmitInput
from config.errors import InvalidInput

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="Retrying with the same key and content returns the first annotation (200).",
)
IF_MATCH_HEADER = OpenApiParameter(
    "If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description='The revision last seen, as an ETag ("3"); a stale one answers 412.',
)


def _if_match(request) -> int | None:
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    match = _ETAG.match(raw)
    if match is None:
        raise InvalidInput(f'If-Match must be a revision ETag such as "3", got {raw!r}', field="if_match")
    return int(match.group(1))


def _etag(annotation) -> str:
    return f'"{annotation.revision}"'


class AnnotationListView(ProjectScopedView):
    serializer_class = AnnotationOutput
    filter_serializer_class = AnnotationFilter
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(parameters=[AnnotationFilter], responses=AnnotationOutput(many=True))
    def get(self, request, slug):
        return self.paginated(
            selectors.annotation_list(
                user=request.user, project=self.get_project(), filters=self.get_filters()
            ),
            AnnotationOutput,
        )

    @extend_schema(
        request={"multipart/form-data": AnnotationSubmitInput},
        parameters=[IDEMPOTENCY_HEADER, IF_MATCH_HEADER],
        responses={201: AnnotationOutput, 200: AnnotationOutput},
        description="Submit a label mask for one of your assignments as its next revision. "
        "Edits must name the revision they are based on (`base_revision`, 409 when stale, or "
        "If-Match, 412 when stale). Needs an acknowledgement of the current guideline.",
    )
    def post(self, request, slug):
        project = self.get_project()
        data = AnnotationSubmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        assignment = selectors.assignment_get(
            user=request.user, project=project, assignment_id=fields["assignment"]
        )
        result = services.annotation_submit(
            actor=request.user, assignment=assignment, mask_data=fields["mask"],
            base_revision=fields["base_revision"], if_match_revision=_if_match(request),
            idempotency_key=request.headers.get("Idempotency-Key"), source=fields["source"],
            time_spent_s=fields["time_spent_s"],
        )
        response = Response(
            AnnotationOutput(result.annotation).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )
        response["ETag"] = _etag(result.annotation)
        return response


class AnnotationDetailView(ProjectScopedView):
    serializer_class = AnnotationOutput

    @extend_schema(responses=AnnotationOutput)
    def get(self, request, slug, pk):
        annotation = selectors.annotation_get(
            user=request.user, project=self.get_project(), annotation_id=pk
        )
        response = Response(AnnotationOutput(annotation).data)
        response["ETag"] = _etag(annotation)
        return response


class AnnotationMaskView(ProjectScopedView):
    serializer_class = AnnotationOutput

    @extend_schema(responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, slug, pk):
        annotation = selectors.annotation_get(
            user=request.user, project=self.get_project(), annotation_id=pk
        )
        ext = annotation.mask.name.rsplit(".", 1)[-1]
        return stored_file_response(
            annotation.mask.name,
            download_name=f"image{annotation.assignment.image_id}_annotation{annotation.pk}"
            f"_r{annotation.revision}.{ext}",
        )
