"""Routes of the guideline pages (``/guidelines/``)."""

from django.urls import path

from guidelines import views

urlpatterns = [
    path("<slug:slug>/", views.guideline_list, name="guideline-pages"),
    path("<slug:slug>/diff/", views.guideline_diff, name="guideline-diff"),
    path("<slug:slug>/<int:version>/", views.guideline_detail, name="guideline-page"),
]
