"""REST API of the annotation app (``/api/v1/``): thin views over services and selectors."""
