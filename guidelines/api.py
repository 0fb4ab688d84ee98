"""Guideline versions: list, create a draft, edit a draft, publish, acknowledge; rule re-checks."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from annotation.api.base import ProjectScopedView
from annotation.serializers import EmptyInput, JobOutput
from guidelines import selectors, services
from guidelines.models import Acknowledgement
from guidelines.serializers import (
    AcknowledgementOutput,
    GuidelineVersionCreateInput,
    GuidelineVersionFilter,
    GuidelineVersionOutput,
    GuidelineVersionUpdateInput,
    RuleRecheckFilter,
    RuleRecheckOutput,
)

RULES_DOC = (
    "Rules are checked when a draft is saved (an unknown rule or a bad value is a 400 whose "
    "message and `rule` name it) and stored normalised; see docs/guideline-rules.md."
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
        project = self.get_project()
        qs = selectors.guideline_version_list(project=project, filters=self.get_filters())
        return self.paginated(
            qs, GuidelineVersionOutput, acknowledged=_acknowledged(request.user),
            recheck_jobs=selectors.guideline_recheck_jobs(project=project),
        )

    @extend_schema(request=GuidelineVersionCreateInput, responses={201: GuidelineVersionOutput},
                   description="Start a new draft version (managers). " + RULES_DOC)
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
        context = {
            "acknowledged": _acknowledged(request.user),
            "recheck_jobs": selectors.guideline_recheck_jobs(project=self.get_project()),
        }
        return Response(GuidelineVersionOutput(self.get_version(), context=context).data)

    @extend_schema(request=GuidelineVersionUpdateInput, responses=GuidelineVersionOutput,
                   description="Edit a draft (managers). " + RULES_DOC)
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

    @extend_schema(
        request=EmptyInput, responses=GuidelineVersionOutput,
        description="Publish a draft (managers); the previous version is retired. Annotations "
        "made under older versions are re-checked against the new rules by a job "
        "(`recheck_job`, null when there is nothing to re-check); its results are listed at "
        "`rechecks/`.",
    )
    def post(self, request, slug, version):
        project = self.get_project()
        found = selectors.guideline_version_get(project=project, version=version)
        EmptyInput(data=request.data).is_valid(raise_exception=True)
        published = services.guideline_version_publish(actor=request.user, version=found)
        jobs = selectors.guideline_recheck_jobs(project=project)
        return Response(GuidelineVersionOutput(published, context={"recheck_jobs": jobs}).data)


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


class GuidelineRecheckView(ProjectScopedView):
    serializer_class = RuleRecheckOutput
    filter_serializer_class = RuleRecheckFilter

    @extend_schema(
        parameters=[RuleRecheckFilter], responses=RuleRecheckOutput(many=True),
        description="What this version's rules say about the annotations made under older "
        "versions (the current revision of each assignment), one row per annotation: "
        '"made under v1; v2 would flag ...". `flagged=true` lists only those with violations. '
        "QA leads, ML engineers and managers see every annotation; annotators only their own.",
    )
    def get(self, request, slug, version):
        found = selectors.guideline_version_get(project=self.get_project(), version=version)
        qs = selectors.rule_recheck_list(user=request.user, version=found, filters=self.get_filters())
        return self.paginated(qs, RuleRecheckOutput)

    @extend_schema(
        request=EmptyInput, responses={202: JobOutput},
        description="Run the re-check of the published version again (QA leads and managers); "
        "poll the job at /api/v1/jobs/<id>/.",
    )
    def post(self, request, slug, version):
        found = selectors.guideline_version_get(project=self.get_project(), version=version)
        EmptyInput(data=request.data).is_valid(raise_exception=True)
        job = services.guideline_recheck_start(actor=request.user, version=found)
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)
