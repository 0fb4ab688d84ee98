"""``/api/v1/`` routes of the training app."""

from django.urls import path

from training.api import views

app_name = "training"

P = "projects/<slug:slug>/"

urlpatterns = [
    path(P + "training-runs/", views.RunListView.as_view(), name="run-list"),
    path(P + "training-runs/<int:pk>/", views.RunDetailView.as_view(), name="run-detail"),
    path(P + "training-runs/<int:pk>/cancel/", views.RunCancelView.as_view(), name="run-cancel"),
    path(P + "models/", views.ModelListView.as_view(), name="model-list"),
    path(P + "models/<int:pk>/", views.ModelDetailView.as_view(), name="model-detail"),
    path(P + "active-learning/", views.ActiveLearningView.as_view(), name="active-learning"),
    path(P + "active-learning/queue/", views.ActiveLearningQueueView.as_view(), name="active-learning-queue"),
    path(P + "images/<int:pk>/assist/", views.AssistView.as_view(), name="image-assist"),
    path(P + "models/<int:pk>/bioimageio/", views.ModelBioimageioView.as_view(), name="model-bioimageio"),
    path(P + "models/<int:pk>/predict/", views.ModelPredictView.as_view(), name="model-predict"),
    path(P + "models/<int:a>/compare/<int:b>/", views.ModelCompareView.as_view(), name="model-compare"),
]
