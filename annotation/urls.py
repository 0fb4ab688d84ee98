"""``/api/v1/`` routes of the annotation app."""

from django.urls import path

from annotation.api import annotations, assignments, drafts, images, jobs, pixels, projects, tokens

app_name = "annotation"

P = "projects/<slug:slug>/"

urlpatterns = [
    path("projects/", projects.ProjectListView.as_view(), name="project-list"),
    path(P, projects.ProjectDetailView.as_view(), name="project-detail"),
    path(P + "members/", projects.MemberListView.as_view(), name="member-list"),
    path(P + "members/<int:pk>/", projects.MemberDetailView.as_view(), name="member-detail"),
    path(P + "images/", images.ImageListView.as_view(), name="image-list"),
    path(P + "images/<int:pk>/", images.ImageDetailView.as_view(), name="image-detail"),
    path(P + "images/<int:pk>/file/", images.ImageFileView.as_view(), name="image-file"),
    path(P + "images/<int:pk>/pixels/", pixels.ImagePixelsView.as_view(), name="image-pixels"),
    path(P + "assignments/", assignments.AssignmentListView.as_view(), name="assignment-list"),
    path(P + "assignments/generate/", assignments.AssignmentGenerateView.as_view(), name="assignment-generate"),
    path(P + "assignments/next/", assignments.AssignmentNextView.as_view(), name="assignment-next"),
    path(P + "assignments/<int:pk>/", assignments.AssignmentDetailView.as_view(), name="assignment-detail"),
    path(P + "assignments/<int:pk>/skip/", assignments.AssignmentSkipView.as_view(), name="assignment-skip"),
    path(P + "assignments/<int:pk>/draft/", drafts.DraftView.as_view(), name="assignment-draft"),
    path(P + "assignments/<int:pk>/draft/labels/", drafts.DraftLabelsView.as_view(), name="assignment-draft-labels"),
    path(P + "annotations/", annotations.AnnotationListView.as_view(), name="annotation-list"),
    path(P + "annotations/<int:pk>/", annotations.AnnotationDetailView.as_view(), name="annotation-detail"),
    path(P + "annotations/<int:pk>/mask/", annotations.AnnotationMaskView.as_view(), name="annotation-mask"),
    path(P + "annotations/<int:pk>/labels/", pixels.AnnotationLabelsView.as_view(), name="annotation-labels"),
    path("tokens/", tokens.TokenListView.as_view(), name="token-list"),
    path("tokens/<int:pk>/", tokens.TokenDetailView.as_view(), name="token-detail"),
    path("jobs/", jobs.JobListView.as_view(), name="job-list"),
    path("jobs/<int:pk>/", jobs.JobDetailView.as_view(), name="job-detail"),
]
