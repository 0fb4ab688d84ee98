"""Routes of the manager's pages (``/manage/``)."""

from django.urls import path

from qa import manage_views

urlpatterns = [
    path("<slug:slug>/", manage_views.manage_home, name="manage-home"),
]
