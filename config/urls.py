"""URL configuration. Each app contributes its API under /api/v1/ and its pages."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotation import views as annotation_views
from config.api_root import ApiRootView

urlpatterns = [
    path("", annotation_views.home, name="home"),
    path("admin/", admin.site.urls),
    path("annotate/", include("annotation.page_urls")),
    path("qa/", include("qa.page_urls")),
    path("ml/", include("datasets.page_urls")),
    path("manage/", include("qa.manage_urls")),
    path("guidelines/", include("guidelines.page_urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/auth/", include("rest_framework.urls")),
    path("api/v1/", ApiRootView.as_view(), name="api-root"),
    path("api/v1/", include("annotation.urls")),
    path("api/v1/", include("guidelines.urls")),
    path("api/v1/", include("qa.urls")),
    path("api/v1/", include("datasets.urls")),
    path("api/v1/", include("training.urls")),
]

# MEDIA_ROOT is never served as such, not even with DJANGO_DEBUG=1: images and masks are
# downloaded only through the API endpoints that check project membership and blind
# labelling (images/<id>/file/, annotations/<id>/mask/).
