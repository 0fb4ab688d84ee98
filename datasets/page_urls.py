"""Routes of the ML engineer's pages (``/ml/``)."""

from django.urls import path

from datasets import model_views, views

urlpatterns = [
    path("<slug:slug>/", views.ml_home, name="ml-home"),
    path("<slug:slug>/datasets/new/", views.snapshot_new, name="ml-snapshot-new"),
    path("<slug:slug>/datasets/diff/", views.snapshot_diff_page, name="ml-snapshot-diff"),
    path("<slug:slug>/datasets/<int:pk>/", views.snapshot_page, name="ml-snapshot"),
    path("<slug:slug>/active-learning/", model_views.active_learning_page, name="ml-active-learning"),
    path("<slug:slug>/models/", model_views.model_registry, name="ml-models"),
    path("<slug:slug>/models/compare/", model_views.model_compare_pick, name="ml-model-pick"),
    path("<slug:slug>/models/<int:pk>/", model_views.model_page, name="ml-model"),
    path("<slug:slug>/models/<int:a>/compare/<int:b>/", model_views.model_compare_page, name="ml-model-compare"),
]
