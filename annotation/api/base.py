"""Plumbing shared by the annotation and guidelines API views: scoping, filters, files."""

from __future__ import annotations

import mimetypes
from pathlib import PurePosixPath

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse
from django.utils.http import content_disposition_header
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import SAFE_METHODS

from annotation.access import check_project_role
from annotation.models import Membership, Project
from annotation.selectors import gold_visible, project_get
from annotation.serializers import FilterSerializer


class ProjectScopedView(GenericAPIView):
    """A view under ``/projects/<slug>/``: the project is resolved for members only (else 404)."""

    filter_serializer_class: type[FilterSerializer] | None = None
    #: Roles that may write through this view (POST, PUT, PATCH, DELETE). Checked before the
    #: body is read, so a role that may not act hears 403, not what its body lacked; the
    #: service still checks (it is the rule, this is the early answer).
    write_roles: tuple[str, ...] | None = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.write_roles is not None and request.method not in SAFE_METHODS:
            check_project_role(user=request.user, project=self.get_project(), roles=self.write_roles)

    def get_project(self) -> Project:
        if not hasattr(self, "_project"):
            self._project = project_get(user=self.request.user, slug=self.kwargs["slug"])
        return self._project

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        # Gold images are blind to annotators: ImageOutput shows ``is_gold`` only with this.
        project = getattr(self, "_project", None)
        context["show_gold"] = project is not None and gold_visible(
            user=self.request.user, project=project
        )
        return context

    def get_filters(self) -> dict:
        """Validated, allow-listed filters from the query string (400 naming unknown ones).

        An empty value (``?plate=``, what a blank field of the browsable API's filter form
        sends) means no filter on that field.
        """
        params = {k: v for k, v in self.request.query_params.items() if v != ""}
        serializer = (self.filter_serializer_class or FilterSerializer)(data=params)
        serializer.is_valid(raise_exception=True)
        return {k: v for k, v in serializer.validated_data.items() if v is not None}

    def paginated(self, queryset, serializer_class, **context):
        page = self.paginate_queryset(queryset)
        data = serializer_class(page, many=True, context={**self.get_serializer_context(), **context}).data
        return self.get_paginated_response(data)


def roles_by_project(user) -> dict[int, str]:
    return dict(Membership.objects.filter(user_id=user.pk).values_list("project_id", "role"))


#: Images and masks are confidential and permission-checked: never kept by shared caches
#: (proxies, CDNs) nor on the disk of the browser that downloaded them.
PRIVATE_NO_STORE = "private, no-store"


def stored_file_response(name: str, *, download_name: str) -> FileResponse:
    """Stream a file from default storage as an attachment."""
    content_type = mimetypes.guess_type(download_name)[0] or "application/octet-stream"
    response = FileResponse(
        default_storage.open(name, "rb"), as_attachment=True,
        filename=PurePosixPath(download_name).name, content_type=content_type,
    )
    response["Cache-Control"] = PRIVATE_NO_STORE
    return response


def rendered_mask_response(rendered) -> HttpResponse:
    """A :class:`~annotation.services.mask_formats.RenderedMask` as an attachment download."""
    response = HttpResponse(rendered.content, content_type=rendered.content_type)
    response["Content-Disposition"] = content_disposition_header(True, rendered.filename)
    response["Content-Length"] = str(len(rendered.content))
    response["Cache-Control"] = PRIVATE_NO_STORE
    return response
