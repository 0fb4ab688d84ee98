"""Django admin for the annotation app. Submitted annotations are shown read-only."""

from django.contrib import admin

from annotation.models import (
    Annotation,
    ApiToken,
    Assignment,
    Image,
    Job,
    Membership,
    Project,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "annotators_per_image", "gold_share", "created_at"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role", "project"]
    list_select_related = ["project", "user"]
    search_fields = ["user__username", "project__slug"]
    raw_id_fields = ["user"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "original_name", "width", "height", "dtype", "plate", "well", "is_gold"]
    list_filter = ["project", "is_gold", "modality"]
    search_fields = ["original_name", "sha256", "plate", "well"]
    # The file, its hash and what was read from it belong together; only metadata is editable.
    readonly_fields = ["project", "file", "sha256", "size_bytes", "format", "width", "height",
                       "channels", "pages", "dtype", "uploaded_by", "created_at"]

    def has_add_permission(self, request):
        return False  # uploads go through the service (format checks, caps, dedup)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "image", "annotator", "status", "lease_expires_at", "submitted_at"]
    list_filter = ["status", "image__project"]
    list_select_related = ["image__project", "annotator"]
    search_fields = ["annotator__username", "image__original_name"]
    raw_id_fields = ["image", "annotator"]

    @admin.display(description="project", ordering="image__project__slug")
    def project(self, obj):
        return obj.image.project.slug


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = [
        "id", "assignment", "revision", "created_by", "instance_count", "source", "upload_format",
        "submitted_at",
    ]
    list_filter = ["source", "upload_format", "assignment__image__project"]
    list_select_related = ["assignment__image", "assignment__annotator", "created_by"]
    search_fields = ["sha256", "created_by__username", "assignment__image__original_name"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "progress_done", "progress_total", "project", "created_at"]
    list_filter = ["status", "kind"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by their owners (API); the admin lists and revokes (deletes) them."""

    list_display = ["prefix", "name", "user", "created_at", "expires_at", "last_used_at"]
    list_select_related = ["user"]
    search_fields = ["user__username", "name", "prefix"]
    readonly_fields = [
        "user", "name", "prefix", "digest", "password_fingerprint", "created_at", "expires_at",
        "last_used_at",
    ]

    def has_add_permission(self, request):
        return False
