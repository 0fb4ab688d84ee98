"""Embedded mode must not block: a run started over the API leaves the request at once.

``CELLCURATE_EMBEDDED_WORKER=1`` (what ``make demo`` sets) routes tasks through kombu's
filesystem transport to a worker process beside the web server; the request only writes
a message file.
"""

import json
import os
import subprocess
import sys
import time

from tests.conftest import REPO_ROOT
from tests.training_service.conftest import run_body
from training.enums import RunStatus
from training.models import TrainingRun

API = "/api/v1/projects/train/"


def test_embedded_worker_settings_use_the_filesystem_transport(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "DATABASE_URL")}
    env.update(CELLCURATE_EMBEDDED_WORKER="1", CELLCURATE_DATA_DIR=str(tmp_path),
               DJANGO_SETTINGS_MODULE="config.settings")
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            "print(json.dumps([s.CELERY_BROKER_URL, s.CELERY_TASK_ALWAYS_EAGER, "
            "s.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in']]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    broker, eager, folder = json.loads(out.strip().splitlines()[-1])
    assert broker == "filesystem://" and eager is False
    assert folder == str(tmp_path / "queue" / "messages") and (tmp_path / "queue" / "messages").is_dir()


def test_starting_a_run_in_embedded_mode_returns_at_once(tworld, api_client, filesystem_broker,
                                                         django_capture_on_commit_callbacks):
    folder = filesystem_broker
    api_client.force_authenticate(tworld.users["ml_engineer"])
    body = run_body(snapshot=tworld.snapshot.pk, hyperparameters={**run_body()["hyperparameters"], "epochs": 50})
    elapsed = []
    for _ in range(2):  # the first request also opens the broker connection
        start = time.perf_counter()
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client.post(API + "training-runs/", body, format="json")
        elapsed.append(time.perf_counter() - start)
    assert response.status_code == 202, response.json()
    # 50 epochs take minutes; the request only validates, writes a row and a message.
    assert elapsed[1] < 1.0, f"the requests took {elapsed} s"
    assert list(TrainingRun.objects.values_list("status", "epochs_done")) == [(RunStatus.QUEUED, 0)] * 2
    messages = sorted(folder.iterdir())
    assert len(messages) == 2
    payload = json.loads(messages[0].read_text())
    assert payload["headers"]["task"] == "training.run_execute"
    assert payload["properties"]["delivery_info"]["routing_key"] == "training"
