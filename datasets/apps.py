from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "datasets"
    label = "datasets"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Datasets"
