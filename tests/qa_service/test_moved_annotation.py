"""A mis-registered annotation (every cell displaced alike) is moved back for the consensus,
and the QA run says so: stored per annotation, in the API and on the review page."""

import numpy as np
import pytest
from django.test import Client

from qa.models import QaRun
from tests.api.uploads import url

pytestmark = pytest.mark.django_db


def test_a_displaced_annotation_is_moved_back_and_reported(qa_world, api_client, django_capture_on_commit_callbacks):
    truth = qa_world.sims[0].labels.astype(np.uint16)
    displaced = np.zeros_like(truth)
    displaced[3:, 4:] = truth[:-3, :-4]  # the whole mask 3 px down, 4 px right
    with django_capture_on_commit_callbacks(execute=True):
        qa_world.submit(0, "ann_a", labels=truth)
        qa_world.submit(0, "ann_b", labels=displaced)
        qa_world.submit(0, "ann_c", labels=truth.copy())
    run = QaRun.objects.get(image=qa_world.images[0])
    moved = {m.annotator.username: (m.moved_y, m.moved_x) for m in run.members.select_related("annotator")}
    assert moved == {"ann_a": (0, 0), "ann_b": (-3, -4), "ann_c": (0, 0)}

    api_client.force_authenticate(qa_world.users["lead"])
    body = api_client.get(url(qa_world.project.slug, "images", qa_world.images[0].pk, "qa")).json()
    assert {a["annotator"]: a["moved_by"] for a in body["annotations"]} == {
        "ann_a": [0, 0], "ann_b": [-3, -4], "ann_c": [0, 0]}
    assert body["consensus"]["n_cells"] == len(np.unique(truth)) - 1  # every cell kept

    client = Client()
    client.force_login(qa_world.users["lead"])
    html = client.get(f"/qa/{qa_world.project.slug}/images/{qa_world.images[0].pk}/").content.decode()
    member = run.members.get(annotator__username="ann_b")
    assert f'data-moved="{member.annotation_id}"' in html and "(-3, -4) px" in html
    assert html.count("data-moved=") == 1
