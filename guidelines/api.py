"""Guideline versions: list, create a draft, edit a draft, publish, acknowledge."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from annotation.api.base import ProjectScopedView
from annotation.serializers import EmptyInput
from guidelines import selectors, services
from guidelines.models import Acknowledgement
from guidelines.serializers import (
    AcknowledgementOutput,
    GuidelineVersionCreateInput,
    GuidelineVersionFilter,
    GuidelineVersionOutput,
    GuidelineVersionUpdateInput,
)


def _acknowledged(user) -> set[int]:
    return set(
        Acknowledgement.objects.filter(user_id=user.pk).values_list("guideline_version_id", flat=True)
    )


class GuidelineListView(ProjectScopedView):
    serializer_class = GuidelineVersionOutput
    filter_serializer_class = GuidelineVersionFilter

    @extend_schema(parameters=[GuidelineVersionFilter], responses=GuidelineVersionOutput(many=True))
    def get(self, request, slug):
        qs = selectors.guideline_version_list(project=self.get_project(), filters=self.get_filters())
        return self.paginated(qs, GuidelineVersionOutput, acknowledged=_acknowledged(request.user))

    @extend_schema(request=GuidelineVersionCreateInput, responses={201: GuidelineVersionOutput})
    def post(self, request, slug):
        project = self.get_project()
        data = GuidelineVersionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.guideline_version_create(
            actor=request.user, project=project, **data.validated_data
        )
        return Response(GuidelineVersionOutput(version).data, status=status.HTTP_201_CREATED)


class GuidelineDetailView(ProjectScopedView):
    serializer_class = GuidelineVersionOutput

    def get_version(self):
        return selectors.guideline_version_get(project=self.get_project(), version=self.kwargs["version"])

    @extend_schema(responses=GuidelineVersionOutput)
    def get(self, request, slug, version):
        return Response(
            GuidelineVersionOutput(self.get_version(), context={"acknowledged": _acknowledged(request.user)}).data
        )

    @extend_schema(request=GuidelineVersionUpdateInput, responses=GuidelineVersionOutput)
    def patch(self, request, slug, version):
        found = self.get_version()
        data = GuidelineVersionUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        updated = services.guideline_version_update(
            actor=request.user, version=found, **data.validated_data
        )
        return Response(GuidelineVersionOutput(updated).data)


class GuidelinePublishView(ProjectScopedView):
    serializer_class = GuidelineVersionOutput

    @extend_schema(request=EmptyInput, responses=GuidelineVersionOutput)
    def post(self, request, slug, version):
        found = selectors.guideline_version_get(project=self.get_project(), version=version)
        EmptyInput(data=request.data).is_valid(raise_exception=True)
        published = services.guideline_version_publish(actor=request.user, version=found)
        return Response(GuidelineVersionOutput(published).data)


class GuidelineAcknowledgeView(ProjectScopedView):
    serializer_class = AcknowledgementOutput

    @extend_schema(request=EmptyInput, responses={201: AcknowledgementOutput, 200: AcknowledgementOutput})
    def post(self, request, slug, version):
        found = selectors.guideline_version_get(project=self.get_project(), version=version)
        EmptyInput(data=request.data).is_valid(raise_exception=True)
        ack, created = services.acknowledgement_create(actor=request.user, version=found)
        return Response(
            AcknowledgementOutput(ack).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
