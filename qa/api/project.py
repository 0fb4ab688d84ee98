"""Project-wide QA: agreement matrix, annotator reliability, qualification, QA settings, audit."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from annotation.api.base import ProjectScopedView
from annotation.enums import Role
from annotation.serializers import JobOutput
from qa import selectors, services
from qa.serializers import AuditFilter, AuditOutput, QaSettingsInput, RequalificationInput


class AgreementView(ProjectScopedView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT},
                   description="Mean pairwise F1 at IoU 0.5 and mean matched IoU between annotators "
                   "over the images both annotated (latest QA run of each image).")
    def get(self, request, slug):
        return Response(selectors.project_agreement(user=request.user, project=self.get_project()))


class AnnotatorsView(ProjectScopedView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT},
                   description="Annotator reliability with its history (annotators: their own row).")
    def get(self, request, slug):
        rows = selectors.reliability_table(user=request.user, project=self.get_project())
        return Response({"annotators": rows})


class ReliabilityRecomputeView(ProjectScopedView):
    @extend_schema(request=None, responses={202: JobOutput})
    def post(self, request, slug):
        job = services.reliability_recompute_request(actor=request.user, project=self.get_project())
        job.refresh_from_db()
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class QaRerunView(ProjectScopedView):
    @extend_schema(request=None, responses={202: JobOutput},
                   description="Run QA again on every image of the project that no person has "
                   "decided on (QA leads, managers): a job. Reviewed and excluded images keep "
                   "their run; the others get a new run with today's reliability weights and "
                   "gold outline biases, and are gated again.")
    def post(self, request, slug):
        job = services.project_qa_rerun_request(actor=request.user, project=self.get_project())
        job.refresh_from_db()
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class QualificationView(ProjectScopedView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, slug):
        project = self.get_project()
        return Response({
            "required_gold_images": project.qualification_gold_images,
            "min_f1": project.qualification_min_f1, "min_mean_iou": project.qualification_min_iou,
            "members": services.qualification_list(actor=request.user, project=project),
        })


class RequalificationView(ProjectScopedView):
    write_roles = (Role.MANAGER,)
    @extend_schema(request=RequalificationInput, responses={200: OpenApiTypes.OBJECT},
                   description="Mark a guideline version as requiring requalification (managers). "
                   "Published: annotators qualified before are pending again now; a draft: once "
                   "it is published.")
    def post(self, request, slug):
        project = self.get_project()
        data = RequalificationInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.guideline_version_for_requalification(
            actor=request.user, project=project, version=data.validated_data["guideline_version"])
        pending = services.requalification_require(actor=request.user, guideline_version=version)
        return Response({"guideline_version": version.version, "status": version.status,
                         "pending_now": pending})


class QaSettingsView(ProjectScopedView):
    write_roles = (Role.MANAGER,)
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, slug):
        return Response(services.qa_settings_get(actor=request.user, project=self.get_project()))

    @extend_schema(request=QaSettingsInput, responses={200: OpenApiTypes.OBJECT})
    def patch(self, request, slug):
        data = QaSettingsInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(services.qa_settings_update(actor=request.user, project=self.get_project(),
                                                    **data.validated_data))


class AuditView(ProjectScopedView):
    serializer_class = AuditOutput
    filter_serializer_class = AuditFilter

    @extend_schema(parameters=[AuditFilter], responses=AuditOutput(many=True))
    def get(self, request, slug):
        return self.paginated(
            selectors.audit_list(user=request.user, project=self.get_project(), filters=self.get_filters()),
            AuditOutput,
        )
