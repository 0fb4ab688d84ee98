"""Routes of the QA lead's pages (``/qa/``)."""

from django.urls import path

from qa import views

urlpatterns = [
    path("<slug:slug>/", views.qa_dashboard, name="qa-dashboard"),
    path("<slug:slug>/pair/", views.qa_pair, name="qa-pair"),
    path("<slug:slug>/policies/", views.qa_policies, name="qa-policies"),
    path("<slug:slug>/images/<int:pk>/", views.qa_review, name="qa-review"),
    path("<slug:slug>/images/<int:pk>/edit/", views.qa_review_edit, name="qa-review-edit"),
    path("<slug:slug>/images/<int:pk>/consensus/labels/", views.qa_consensus_labels, name="qa-consensus-labels"),
    path("<slug:slug>/images/<int:pk>/model-reference/labels/", views.qa_model_reference_labels,
         name="qa-model-reference-labels"),
]
