"""Routes of the annotator's pages (``/annotate/``)."""

from django.urls import path

from annotation import views

urlpatterns = [
    path("<slug:slug>/", views.annotate_queue, name="annotate-queue"),
    path("<slug:slug>/next/", views.annotate_next, name="annotate-next"),
    path("<slug:slug>/tasks/<int:pk>/", views.annotate_task, name="annotate-task"),
    path("<slug:slug>/tasks/<int:pk>/skip/", views.annotate_skip, name="annotate-skip"),
    path(
        "<slug:slug>/guideline/<int:version>/acknowledge/", views.annotate_acknowledge,
        name="annotate-acknowledge",
    ),
]
