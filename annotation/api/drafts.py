"""Workspace drafts: the annotator's autosaved, unsubmitted mask of one assignment."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from annotation import selectors
from annotation.api.annotations import IgnoreFormatQueryNegotiation
from annotation.api.base import ProjectScopedView
from annotation.api.pixels import _RAW_RESPONSE, LabelsQuery, labels_response
from annotation.models import AnnotationDraft
from annotation.serializers import JSONObjectField, StrictSerializer
from annotation.services.drafts import draft_discard, draft_get, draft_save
from annotation.services.images import read_upload_capped
from annotation.services.pixels import draft_labels_raw


class DraftOutput(serializers.ModelSerializer):
    class Meta:
        model = AnnotationDraft
        fields = [
            "assignment", "base_revision", "sha256", "height", "width", "instance_count",
            "state", "saves", "model_assisted", "model_version", "created_at", "saved_at",
        ]
        read_only_fields = fields


class DraftSaveInput(StrictSerializer):
    labels = serializers.FileField(
        allow_empty_file=True,
        help_text="The label image: a 16-bit grey PNG (or an integer TIFF), the image's size.",
    )
    base_revision = serializers.IntegerField(
        min_value=0, required=False, default=0,
        help_text="The revision the draft edits (0 before the first submission).",
    )
    state = JSONObjectField(required=False, default=dict)


class DraftView(ProjectScopedView):
    serializer_class = DraftOutput
    parser_classes = [MultiPartParser, FormParser]

    def get_assignment(self):
        return selectors.assignment_get(
            user=self.request.user, project=self.get_project(), assignment_id=self.kwargs["pk"]
        )

    @extend_schema(responses=DraftOutput)
    def get(self, request, slug, pk):
        return Response(DraftOutput(draft_get(actor=request.user, assignment=self.get_assignment())).data)

    @extend_schema(
        request={"multipart/form-data": DraftSaveInput}, responses=DraftOutput,
        description="Autosave: replace the draft. 409 when base_revision is not the latest.",
    )
    def put(self, request, slug, pk):
        assignment = self.get_assignment()
        data = DraftSaveInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        draft = draft_save(
            actor=request.user, assignment=assignment,
            labels_data=read_upload_capped(fields["labels"], name="labels", field="labels"),
            base_revision=fields["base_revision"], state=fields["state"],
        )
        return Response(DraftOutput(draft).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug, pk):
        draft_discard(actor=request.user, assignment=self.get_assignment())
        return Response(status=status.HTTP_204_NO_CONTENT)


class DraftLabelsView(ProjectScopedView):
    serializer_class = DraftOutput
    content_negotiation_class = IgnoreFormatQueryNegotiation
    renderer_classes = [JSONRenderer]

    @extend_schema(parameters=[LabelsQuery], responses=_RAW_RESPONSE,
                   description="The draft's label image as raw ids (or its stored PNG, `encoding=png`).")
    def get(self, request, slug, pk):
        query = LabelsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        assignment = selectors.assignment_get(
            user=request.user, project=self.get_project(), assignment_id=pk
        )
        draft = draft_get(actor=request.user, assignment=assignment)
        return labels_response(request, encoding=query.validated_data["encoding"],
                               name=draft.labels.name, sha256=draft.sha256,
                               height=draft.height, width=draft.width,
                               raw=lambda: draft_labels_raw(draft=draft))
