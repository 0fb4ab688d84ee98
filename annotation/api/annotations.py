"""Annotations: submit a mask in any format (Idempotency-Key, If-Match), list, read, download."""

from __future__ import annotations

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from annotation import selectors, services
from annotation.api.base import ProjectScopedView, rendered_mask_response, stored_file_response
from annotation.serializers import (
    AnnotationCheckOutput,
    AnnotationFilter,
    AnnotationMaskQuery,
    AnnotationOutput,
    AnnotationSubmitInput,
)
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
        responses={
            201: AnnotationOutput,
            200: PolymorphicProxySerializer(
                component_name="AnnotationSubmitOk",
                serializers=[AnnotationOutput, AnnotationCheckOutput], resource_type_field_name=None,
            ),
        },
        description="Submit a mask for one of your assignments as its next revision, in any "
        "supported format recognised by content (label image PNG/TIFF/OME-TIFF, binary or "
        "two-colour mask, per-instance masks as a zip or (N, H, W) stack, COCO, Cellpose "
        "_seg.npy, ImageJ ROI zip, QuPath GeoJSON, Label Studio JSON). Intensity images and "
        "binary masks that look inverted are refused with the reason (`invert` decides "
        "polarity); `geometry` picks QuPath nuclei, `crowd` COCO crowd RLE. Class names must be (or map via "
        "`class_map` to) the project's cell classes: unknown ones are a 400 listing them. What "
        "the converter changed or skipped is returned in `import_report`. Edits must name the "
        "revision they are based on (`base_revision`, 409 when stale, or If-Match, 412 when "
        "stale). Needs an acknowledgement of the current guideline. The mask is checked against "
        "the guideline's rules: a blocking violation is a 400 (`code` rule_violations) listing "
        "`violations` with their cells; warnings are stored and returned as `rule_warnings`. "
        "With `dry_run=true` nothing is stored and the answer (200) is the rule check: "
        "`accepted` and every violation. A replay of an Idempotency-Key answers 200 with the "
        "first annotation.",
    )
    def post(self, request, slug):
        project = self.get_project()
        data = AnnotationSubmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        assignment = selectors.assignment_get(
            user=request.user, project=project, assignment_id=fields["assignment"]
        )
        result = services.annotation_import(
            actor=request.user, assignment=assignment, mask_data=fields["mask"],
            format=fields["mask_format"], image_name=fields["image_name"],
            class_map=fields["class_map"],
            base_revision=fields["base_revision"], if_match_revision=_if_match(request),
            idempotency_key=request.headers.get("Idempotency-Key"), source=fields["source"],
            time_spent_s=fields["time_spent_s"], dry_run=fields["dry_run"],
            import_options=services.ImportOptions(
                invert=fields["invert"], geometry=fields["geometry"], crowd=fields["crowd"]
            ),
        )
        if result.dry_run:
            return Response(AnnotationCheckOutput({
                "dry_run": True, "guideline_version": result.guideline_version,
                "accepted": not any(v.blocking for v in result.violations),
                "violations": [v.as_dict() for v in result.violations],
            }).data)
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


class IgnoreFormatQueryNegotiation(DefaultContentNegotiation):
    """Content negotiation that leaves ``?format=`` to the view (it names a mask format here,
    not a DRF renderer); responses other than the file are JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = next(r for r in renderers if isinstance(r, JSONRenderer))
        return renderer, renderer.media_type


class AnnotationMaskView(ProjectScopedView):
    serializer_class = AnnotationOutput
    content_negotiation_class = IgnoreFormatQueryNegotiation
    renderer_classes = [JSONRenderer]

    @extend_schema(
        parameters=[AnnotationMaskQuery],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The mask file: image/png, image/tiff, application/json (COCO), "
                "application/geo+json, application/zip (ImageJ ROIs) or a Cellpose _seg.npy.",
            ),
        },
        description="Download the annotation's mask, by default as stored (16-bit PNG, or TIFF "
        "above 65,535 instances), or converted with `?format=`. Blind labeling applies: an "
        "annotator gets 404 for another annotator's mask of an image they have not submitted.",
    )
    def get(self, request, slug, pk):
        annotation = selectors.annotation_get(
            user=request.user, project=self.get_project(), annotation_id=pk
        )
        query = AnnotationMaskQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        fmt = query.validated_data.get("format")
        if fmt is None:
            ext = annotation.mask.name.rsplit(".", 1)[-1]
            return stored_file_response(
                annotation.mask.name,
                download_name=f"image{annotation.assignment.image_id}_annotation{annotation.pk}"
                f"_r{annotation.revision}.{ext}",
            )
        return rendered_mask_response(
            services.annotation_mask_render(annotation=annotation, format=fmt)
        )
