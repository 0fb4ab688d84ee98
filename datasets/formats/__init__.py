"""Pure writers of dataset exports: manifests, training formats, datasheets, streamed zips.

Never imports Django: every writer takes numpy arrays and plain values and returns
``{relative path: bytes}`` (or yields bytes), so it runs the same in a Celery task, a
benchmark or a notebook. Storage and atomic writes are the service's business.
"""
