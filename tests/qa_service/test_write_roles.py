"""Who may not write through an endpoint hears 403 before anything about their body, and
nothing is written; who may, still gets the field-level 400 for the same bad body."""

import pytest

from annotation.models import Job
from qa.models import AuditEvent, GatingPolicy, QaRun, ReviewDecision

P = "/api/v1/projects/qa/"

# (method, path, roles allowed to write). {image} is image 0; {model} a missing model id.
ENDPOINTS = [
    ("post", "images/{image}/qa/", {"lead", "manager"}),
    ("post", "images/{image}/review/", {"lead", "manager"}),
    ("post", "gating-policies/", {"lead", "manager"}),
    ("patch", "qa/settings/", {"manager"}),
    ("post", "qa/qualification/requalify/", {"manager"}),
    ("post", "training-runs/", {"ml", "manager"}),
    ("post", "models/999999/predict/", {"ml", "manager"}),
    ("post", "active-learning/queue/", {"manager"}),
    ("post", "active-learning/", {"lead", "ml", "manager"}),
]


def _counts():
    return (Job.objects.count(), QaRun.objects.count(), GatingPolicy.objects.count(),
            ReviewDecision.objects.count(), AuditEvent.objects.count())


@pytest.mark.parametrize(("method", "path", "allowed"), ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_roles_that_may_not_write_get_403_before_validation(submitted, api_client, method, path, allowed):
    url = P + path.format(image=submitted.images[0].pk)
    before = _counts()
    for name in ("ann_a", "lead", "manager", "ml"):
        api_client.force_authenticate(submitted.users[name])
        response = getattr(api_client, method)(url, {"bogus": "x"}, format="json")
        if name in allowed and "999999" in path:  # the missing model is the next thing said
            assert response.status_code == 404, (name, response.status_code, response.content)
        elif name in allowed:
            assert response.status_code == 400, (name, response.status_code, response.content)
            assert "bogus" in response.json(), response.content  # the field-level message
        else:
            assert response.status_code == 403, (name, response.status_code, response.content)
            assert "role" in response.json()["detail"]
    assert _counts() == before
