"""``/api/v1/`` routes of the guidelines app."""

from django.urls import path

from guidelines import api

app_name = "guidelines"

P = "projects/<slug:slug>/guidelines/"

urlpatterns = [
    path(P, api.GuidelineListView.as_view(), name="guideline-list"),
    path(P + "<int:version>/", api.GuidelineDetailView.as_view(), name="guideline-detail"),
    path(P + "<int:version>/publish/", api.GuidelinePublishView.as_view(), name="guideline-publish"),
    path(P + "<int:version>/acknowledge/", api.GuidelineAcknowledgeView.as_view(), name="guideline-acknowledge"),
    path(P + "<int:version>/rechecks/", api.GuidelineRecheckView.as_view(), name="guideline-rechecks"),
]
