"""The API's front door: ``/api/v1/`` lists every resource (the browsable API's home page).

The root is built from the URL configuration, so a resource an app adds under ``/api/v1/``
(a route named ``<thing>-list``) appears here without editing this module: top-level
collections once, per-project collections once per project the user is a member of.
"""

from __future__ import annotations

from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

API_PREFIX = "api/v1/"


def _list_route_names() -> list[str]:
    """``namespace:name`` of every route under :data:`API_PREFIX` whose name ends in ``-list``."""
    names: list[str] = []

    def walk(patterns, prefix: str, namespace: str | None) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                ns = namespace
                if p.namespace:
                    ns = f"{namespace}:{p.namespace}" if namespace else p.namespace
                walk(p.url_patterns, route, ns)
            elif isinstance(p, URLPattern) and route.startswith(API_PREFIX) and p.name:
                if p.name.endswith("-list"):
                    names.append(f"{namespace}:{p.name}" if namespace else p.name)

    walk(get_resolver().url_patterns, "", None)
    return list(dict.fromkeys(names))


def _resource(url: str) -> str:
    """The key a collection is listed under: its URL's last segment (``gating_policies``)."""
    return url.rstrip("/").rsplit("/", 1)[-1].replace("-", "_")


class ApiRootView(APIView):
    """The resources of the API with their links, and each of your projects' collections."""

    @extend_schema(
        responses=OpenApiTypes.OBJECT, operation_id="api_root",
        description="Links to every collection: top-level ones (`projects`, `jobs`, ...) and, "
        "under `projects_detail`, the collections of each project you are a member of.",
    )
    def get(self, request):
        from annotation.selectors import project_list

        top: dict[str, str] = {}
        per_project: list[str] = []
        for name in _list_route_names():
            try:
                url = reverse(name)
            except NoReverseMatch:
                per_project.append(name)
            else:
                top[_resource(url)] = url
        absolute = request.build_absolute_uri
        projects = {}
        for project in project_list(user=request.user):
            links = {"project": absolute(reverse("annotation:project-detail", kwargs={"slug": project.slug}))}
            for name in per_project:
                try:
                    url = reverse(name, kwargs={"slug": project.slug})
                except NoReverseMatch:
                    continue  # a collection under something else (a snapshot's exports, ...)
                links[_resource(url)] = absolute(url)
            projects[project.slug] = links
        return Response({
            **{key: absolute(url) for key, url in top.items()},
            "projects_detail": projects,
            "schema": absolute(reverse("schema")),
            "docs": absolute(reverse("api-docs")),
        })
