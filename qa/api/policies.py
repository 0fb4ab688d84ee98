"""Gating policies: list, create a draft, edit a draft, publish (re-gates the project as a job)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from annotation.api.base import ProjectScopedView
from annotation.serializers import JobOutput
from qa import selectors, services
from qa.serializers import PolicyInput, PolicyOutput
from qa.services.policies import ACTING_ROLES


class PolicyListView(ProjectScopedView):
    write_roles = ACTING_ROLES
    serializer_class = PolicyOutput

    @extend_schema(responses=PolicyOutput(many=True))
    def get(self, request, slug):
        return self.paginated(selectors.policy_list(user=request.user, project=self.get_project()), PolicyOutput)

    @extend_schema(request=PolicyInput, responses={201: PolicyOutput})
    def post(self, request, slug):
        data = PolicyInput(data=request.data)
        data.is_valid(raise_exception=True)
        policy = services.policy_create(actor=request.user, project=self.get_project(), **data.validated_data)
        return Response(PolicyOutput(policy).data, status=status.HTTP_201_CREATED)


class PolicyDetailView(ProjectScopedView):
    write_roles = ACTING_ROLES
    serializer_class = PolicyOutput

    def get_policy(self):
        selectors.policy_list(user=self.request.user, project=self.get_project())
        return services.policy_get(project=self.get_project(), version=self.kwargs["version"])

    @extend_schema(responses=PolicyOutput)
    def get(self, request, slug, version):
        return Response(PolicyOutput(self.get_policy()).data)

    @extend_schema(request=PolicyInput, responses=PolicyOutput)
    def patch(self, request, slug, version):
        data = PolicyInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        policy = services.policy_update(actor=request.user, policy=self.get_policy(), **data.validated_data)
        return Response(PolicyOutput(policy).data)


class PolicyPublishView(PolicyDetailView):
    @extend_schema(request=None, responses={202: PolicyOutput})
    def post(self, request, slug, version):
        policy, job = services.policy_publish(actor=request.user, policy=self.get_policy())
        job.refresh_from_db()
        return Response({"policy": PolicyOutput(policy).data, "job": JobOutput(job).data},
                        status=status.HTTP_202_ACCEPTED)
