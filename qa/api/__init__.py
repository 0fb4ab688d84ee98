"""DRF views of the QA workflow under ``/api/v1/projects/<slug>/`` (thin: parse, call, render)."""
