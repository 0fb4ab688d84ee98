"""``/api/v1/`` routes of the datasets app."""

from django.urls import path

from datasets.api import views

app_name = "datasets"

D = "projects/<slug:slug>/datasets/"

urlpatterns = [
    path(D, views.SnapshotListView.as_view(), name="snapshot-list"),
    path(D + "<int:pk>/", views.SnapshotDetailView.as_view(), name="snapshot-detail"),
    path(D + "<int:a>/diff/<int:b>/", views.SnapshotDiffView.as_view(), name="snapshot-diff"),
    path(D + "<int:pk>/exports/", views.ExportListView.as_view(), name="export-list"),
    path(D + "<int:pk>/exports/<int:export_id>/", views.ExportDetailView.as_view(), name="export-detail"),
    path(D + "<int:pk>/exports/<int:export_id>/download/", views.ExportDownloadView.as_view(),
         name="export-download"),
]
