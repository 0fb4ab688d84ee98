"""Routes of the ML engineer's pages (``/ml/``)."""

from django.urls import path

from datasets import views

urlpatterns = [
    path("<slug:slug>/", views.ml_home, name="ml-home"),
]
