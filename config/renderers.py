"""Renderers of the API (``REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"]``).

Kept apart from the views: DRF imports this module while ``rest_framework.views`` loads.
"""

from __future__ import annotations

from django.template import loader
from django.utils.html import escape
from django.utils.safestring import mark_safe
from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's browsable API for views that filter with an allow-listed serializer.

    DRF builds its filter form from ``get_queryset()`` and filter backends, which our views
    do not have (queries live in selectors, filters in ``filter_serializer_class``); its
    default asserts on such views. Here the filter form is the view's filter serializer,
    rendered as a GET form.
    """

    def get_filter_form(self, data, view, request):
        filter_class = getattr(view, "filter_serializer_class", None)
        if filter_class is None or request.method != "GET" or not isinstance(data, dict | list):
            return None
        if isinstance(data, dict) and "results" not in data:
            return None
        serializer = filter_class()
        fields = renderers.HTMLFormRenderer().render(
            serializer.data, renderer_context={"style": {"template_pack": "rest_framework/vertical/"}}
        )
        if not fields.strip():
            return None
        form = (
            f'<form method="get" action="{escape(request.path)}"><input type="hidden" name="format" value="api">'
            f'{fields}<button class="btn btn-primary" type="submit">Filter</button></form>'
        )
        return loader.get_template(self.filter_template).render({"elements": [mark_safe(form)]})  # noqa: S308
