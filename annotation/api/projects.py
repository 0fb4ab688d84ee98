"""Projects and members."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from annotation import selectors, services
from annotation.api.base import ProjectScopedView, roles_by_project
from annotation.serializers import (
    FilterSerializer,
    MembershipCreateInput,
    MembershipFilter,
    MembershipOutput,
    MembershipUpdateInput,
    ProjectCreateInput,
    ProjectOutput,
    ProjectUpdateInput,
)


class ProjectListView(ProjectScopedView):
    serializer_class = ProjectOutput
    filter_serializer_class = FilterSerializer

    @extend_schema(responses=ProjectOutput(many=True), operation_id="projects_list")
    def get(self, request):
        self.get_filters()
        return self.paginated(
            selectors.project_list(user=request.user), ProjectOutput,
            roles=roles_by_project(request.user),
        )

    @extend_schema(request=ProjectCreateInput, responses={201: ProjectOutput})
    def post(self, request):
        data = ProjectCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(actor=request.user, **data.validated_data)
        return Response(
            ProjectOutput(project, context={"roles": roles_by_project(request.user)}).data,
            status=status.HTTP_201_CREATED,
        )


class ProjectDetailView(ProjectScopedView):
    serializer_class = ProjectOutput

    @extend_schema(responses=ProjectOutput)
    def get(self, request, slug):
        project = self.get_project()
        return Response(ProjectOutput(project, context={"roles": roles_by_project(request.user)}).data)

    @extend_schema(request=ProjectUpdateInput, responses=ProjectOutput)
    def patch(self, request, slug):
        data = ProjectUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project = services.project_update(
            actor=request.user, project=self.get_project(), **data.validated_data
        )
        return Response(ProjectOutput(project, context={"roles": roles_by_project(request.user)}).data)


class MemberListView(ProjectScopedView):
    serializer_class = MembershipOutput
    filter_serializer_class = MembershipFilter

    @extend_schema(parameters=[MembershipFilter], responses=MembershipOutput(many=True))
    def get(self, request, slug):
        return self.paginated(
            selectors.membership_list(
                user=request.user, project=self.get_project(), filters=self.get_filters()
            ),
            MembershipOutput,
        )

    @extend_schema(request=MembershipCreateInput, responses={201: MembershipOutput})
    def post(self, request, slug):
        project = self.get_project()
        data = MembershipCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = selectors.user_get_by_username(username=data.validated_data["username"])
        membership = services.membership_add(
            actor=request.user, project=project, user=user, role=data.validated_data["role"]
        )
        return Response(MembershipOutput(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailView(ProjectScopedView):
    serializer_class = MembershipOutput

    def get_membership(self):
        return selectors.membership_get(
            user=self.request.user, project=self.get_project(), membership_id=self.kwargs["pk"]
        )

    @extend_schema(responses=MembershipOutput)
    def get(self, request, slug, pk):
        return Response(MembershipOutput(self.get_membership()).data)

    @extend_schema(request=MembershipUpdateInput, responses=MembershipOutput)
    def patch(self, request, slug, pk):
        membership = self.get_membership()
        data = MembershipUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_update(
            actor=request.user, membership=membership, role=data.validated_data["role"]
        )
        return Response(MembershipOutput(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request, slug, pk):
        services.membership_remove(actor=request.user, membership=self.get_membership())
        return Response(status=status.HTTP_204_NO_CONTENT)
