"""Embedded mode under concurrency: a real server on a real SQLite file, hit by 8 threads.

The default a new user runs is SQLite. Write transactions take the write lock when they
begin (``transaction_mode: IMMEDIATE``) and wait for it (busy timeout), and any lock error
left is a JSON 503 with ``Retry-After``: a client never sees a 500 for contention.

The test database of the rest of the suite is in memory and shared by threads, which
cannot show lock contention; so this test migrates a SQLite file of its own, starts
``manage.py runserver`` (a thread and a connection per request) on it and sends the
requests over HTTP.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image as PILImage

REPO_ROOT = Path(__file__).resolve().parents[2]
THREADS = 8

_SETUP = r"""
import json
import django
django.setup()
import numpy as np
from annotation.enums import Role
from annotation.services import annotation_submit_labels
from annotation.services.tokens import token_create
from tests.factories import (
    AcknowledgementFactory, AssignmentFactory, GuidelineVersionFactory, ImageFactory,
    MembershipFactory, ProjectFactory, UserFactory, label_mask,
)
project = ProjectFactory(slug="race")
users = [UserFactory(username=f"racer{i}") for i in range(2)]
guideline = GuidelineVersionFactory(project=project, published=True)
for user in users:
    MembershipFactory(user=user, project=project, role=Role.ANNOTATOR)
    AcknowledgementFactory(user=user, guideline_version=guideline)
images = [ImageFactory(project=project) for _ in range(2)]
edited = AssignmentFactory(image=images[0], annotator=users[0])
annotation_submit_labels(actor=users[0], assignment=edited, labels=label_mask(cells=1))
fresh = AssignmentFactory(image=images[1], annotator=users[0])
print(json.dumps({
    "token": token_create(user=users[0], name="race").key,
    "edited": edited.pk, "fresh": fresh.pk,
}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _png(labels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(labels.astype(np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def _mask(seed: int) -> bytes:
    labels = np.zeros((24, 32), np.uint16)
    labels[2 + seed % 10 : 8 + seed % 10, 3:9] = 1
    labels[12:20, 15:20 + seed % 8] = 2
    return _png(labels)


@pytest.fixture(scope="module")
def live_sqlite_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("sqlite-live")
    env = {
        **os.environ, "CELLCURATE_DATA_DIR": str(data_dir), "MEDIA_ROOT": str(data_dir / "media"),
        "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1",
    }
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DJANGO_DEBUG"):
        env.pop(name, None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=REPO_ROOT, env=env, check=True,
                   capture_output=True, timeout=300)
    setup = subprocess.run([sys.executable, "-c", _SETUP], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert setup.returncode == 0, setup.stderr[-3000:]
    ids = json.loads(setup.stdout.strip().splitlines()[-1])
    port = _free_port()
    log = open(data_dir / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=REPO_ROOT, env=env,
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/api/v1/", timeout=2)
                break
            except requests.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((data_dir / "server.log").read_text()) from None
                time.sleep(0.3)
        yield {"base": base, "db": data_dir / "db.sqlite3", **ids}
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _race(send) -> list[requests.Response]:
    barrier = threading.Barrier(THREADS)
    results: list = [None] * THREADS

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = send(i)
        except BaseException as exc:  # re-raised below
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results


def _summary(responses) -> list[tuple[int, str]]:
    return sorted((r.status_code, r.headers.get("Content-Type", "")) for r in responses)


def _rows(db: Path, sql: str, *args) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def test_eight_simultaneous_edits_of_one_revision(live_sqlite_server):
    server = live_sqlite_server
    headers = {"Authorization": f"Token {server['token']}"}
    url = f"{server['base']}/api/v1/projects/race/annotations/"

    responses = _race(lambda i: requests.post(
        url, headers=headers, timeout=120,
        data={"assignment": server["edited"], "base_revision": 1},
        files={"mask": ("mask.png", _mask(i), "image/png")},
    ))
    codes = [r.status_code for r in responses]
    assert codes.count(201) == 1, _summary(responses)
    assert set(codes) <= {201, 409, 412, 503}, _summary(responses)
    assert all(r.headers["Content-Type"] == "application/json" for r in responses)
    for r in responses:
        if r.status_code == 503:
            assert r.json()["code"] == "database_busy" and int(r.headers["Retry-After"]) >= 1
        elif r.status_code == 409:
            assert "revision" in json.dumps(r.json())
    revisions = _rows(server["db"], "SELECT revision FROM annotation_annotation "
                      "WHERE assignment_id = ? ORDER BY revision", server["edited"])
    assert revisions == [(1,), (2,)]


def test_eight_requests_with_one_idempotency_key_make_one_row(live_sqlite_server):
    server = live_sqlite_server
    headers = {"Authorization": f"Token {server['token']}", "Idempotency-Key": "race-key-1"}
    url = f"{server['base']}/api/v1/projects/race/annotations/"
    body = _mask(3)

    responses = _race(lambda i: requests.post(
        url, headers=headers, timeout=120, data={"assignment": server["fresh"]},
        files={"mask": ("mask.png", body, "image/png")},
    ))
    codes = [r.status_code for r in responses]
    assert 500 not in codes, _summary(responses)
    assert codes.count(201) == 1, _summary(responses)
    assert set(codes) <= {200, 201, 409, 503}, _summary(responses)
    assert all(r.headers["Content-Type"] == "application/json" for r in responses)
    ids = {r.json()["id"] for r in responses if r.status_code in (200, 201)}
    assert len(ids) == 1
    rows = _rows(server["db"], "SELECT id FROM annotation_annotation WHERE idempotency_key = ?",
                 "race-key-1")
    assert rows == [(ids.pop(),)]
