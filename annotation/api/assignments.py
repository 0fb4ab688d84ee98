"""Assignments: list (annotators see their own), generate (job), next task, skip."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from annotation import selectors, services
from annotation.api.base import ProjectScopedView
from annotation.enums import JOB_FINISHED
from annotation.serializers import (
    AssignmentFilter,
    AssignmentOutput,
    AssignmentSkipInput,
    EmptyInput,
    JobOutput,
)


class AssignmentListView(ProjectScopedView):
    serializer_class = AssignmentOutput
    filter_serializer_class = AssignmentFilter

    @extend_schema(parameters=[AssignmentFilter], responses=AssignmentOutput(many=True))
    def get(self, request, slug):
        return self.paginated(
            selectors.assignment_list(
                user=request.user, project=self.get_project(), filters=self.get_filters()
            ),
            AssignmentOutput,
        )


class AssignmentGenerateView(ProjectScopedView):
    serializer_class = JobOutput

    @extend_schema(
        request=EmptyInput, responses={202: JobOutput, 200: JobOutput},
        description="Generate k assignments per image as a job. 202 while the job is queued or "
        "running (poll the `Location`), 200 when it has already finished (the embedded mode runs "
        "it in-process); the body is the job's state at the time of the answer.",
    )
    def post(self, request, slug):
        EmptyInput(data=request.data).is_valid(raise_exception=True)
        job = services.assignments_generate_job(actor=request.user, project=self.get_project())
        # An eager task has run by now (on commit of the service's transaction).
        job.refresh_from_db()
        response = Response(
            JobOutput(job).data,
            status=status.HTTP_200_OK if job.status in JOB_FINISHED else status.HTTP_202_ACCEPTED,
        )
        response["Location"] = reverse("annotation:job-detail", kwargs={"pk": job.pk})
        return response


class AssignmentNextView(ProjectScopedView):
    serializer_class = AssignmentOutput

    @extend_schema(
        request=EmptyInput,
        responses={200: AssignmentOutput, 204: OpenApiResponse(description="Nothing left to do.")},
    )
    def post(self, request, slug):
        EmptyInput(data=request.data).is_valid(raise_exception=True)
        assignment = services.assignment_next(actor=request.user, project=self.get_project())
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        # The editor's SAM assist embeds the image now (a task). Imported here: training
        # builds on annotation, not back.
        from training.services.assist import assist_precompute_schedule

        assist_precompute_schedule(image=assignment.image)
        return Response(AssignmentOutput(assignment, context=self.get_serializer_context()).data)


class AssignmentDetailView(ProjectScopedView):
    serializer_class = AssignmentOutput

    @extend_schema(responses=AssignmentOutput)
    def get(self, request, slug, pk):
        assignment = selectors.assignment_get(
            user=request.user, project=self.get_project(), assignment_id=pk
        )
        return Response(AssignmentOutput(assignment, context=self.get_serializer_context()).data)


class AssignmentSkipView(ProjectScopedView):
    serializer_class = AssignmentOutput

    @extend_schema(request=AssignmentSkipInput, responses=AssignmentOutput)
    def post(self, request, slug, pk):
        assignment = selectors.assignment_get(
            user=request.user, project=self.get_project(), assignment_id=pk
        )
        data = AssignmentSkipInput(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = services.assignment_skip(
            actor=request.user, assignment=assignment, reason=data.validated_data["reason"]
        )
        return Response(AssignmentOutput(assignment, context=self.get_serializer_context()).data)
