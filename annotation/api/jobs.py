"""Jobs: poll the progress of asynchronous work."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from annotation import selectors
from annotation.api.base import ProjectScopedView
from annotation.serializers import JobFilter, JobOutput


class JobListView(ProjectScopedView):
    serializer_class = JobOutput
    filter_serializer_class = JobFilter

    @extend_schema(parameters=[JobFilter], responses=JobOutput(many=True))
    def get(self, request):
        return self.paginated(selectors.job_list(user=request.user, filters=self.get_filters()), JobOutput)


class JobDetailView(ProjectScopedView):
    serializer_class = JobOutput

    @extend_schema(responses=JobOutput)
    def get(self, request, pk):
        return Response(JobOutput(selectors.job_get(user=request.user, job_id=pk)).data)
