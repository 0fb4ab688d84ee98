"""Embedded mode: the k-th submission queues the QA run for the worker beside the web server.

With ``CELLCURATE_EMBEDDED_WORKER=1`` tasks go through kombu's filesystem transport (see
tests/training_service/test_embedded.py); the annotator's request only writes a message,
the QA run happens in the worker.
"""

import json

from qa.models import QaRun


def test_the_kth_submission_queues_qa_instead_of_running_it(qa_world, filesystem_broker,
                                                            django_capture_on_commit_callbacks):
    folder = filesystem_broker
    with django_capture_on_commit_callbacks(execute=True):
        qa_world.submit(0, "ann_a")
        qa_world.submit(0, "ann_b")
    assert list(folder.iterdir()) == []  # fewer than k = 3: nothing to run yet
    with django_capture_on_commit_callbacks(execute=True):
        qa_world.submit(0, "ann_c")
    assert not QaRun.objects.exists()  # not run in the request
    messages = sorted(folder.iterdir())
    assert len(messages) == 1
    payload = json.loads(messages[0].read_text())
    assert payload["headers"]["task"] == "qa.image_qa_run"
    assert payload["headers"]["argsrepr"].startswith(f"({qa_world.images[0].pk}, 'submission'")
    assert payload["properties"]["delivery_info"]["routing_key"] == "default"
