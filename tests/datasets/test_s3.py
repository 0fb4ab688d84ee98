"""Exports to a real S3 API server and back (moto's server mode on 127.0.0.1, not a mock).

The session starts moto's HTTP server; Django's storages (default and exports) are
switched to ``storages.backends.s3.S3Storage`` pointing at it, so images, masks, QA
files and exports all travel over the S3 protocol through boto3.
"""

import numpy as np
import pytest
from django.test.utils import override_settings

from datasets.enums import ExportStatus
from datasets.storage import export_storage
from tests.datasets.conftest import build_world
from tests.datasets.helpers import make_snapshot, run_export

BUCKET = "cellcurate-test"


@pytest.fixture(scope="session")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_storages(s3_server, monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    options = {"bucket_name": BUCKET, "endpoint_url": s3_server, "region_name": "us-east-1",
               "access_key": "testing", "secret_key": "testing", "signature_version": "s3v4",
               "default_acl": None}
    storages = {
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**options, "file_overwrite": False}},
        "exports": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**options, "file_overwrite": True}},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.mark.django_db
def test_images_masks_and_exports_live_in_s3_and_come_back(s3_storages, django_capture_on_commit_callbacks, tmp_path):
    from cellpose import io as cp_io
    from django.core.files.storage import storages

    assert type(storages["default"]).__name__ == "S3Storage"
    assert type(export_storage()).__name__ == "S3Storage"
    world = build_world(6, slug="s3cells")
    keys = {o["Key"] for o in s3_storages.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {img.file.name for img in world.images} <= keys  # uploads went to the bucket

    snap = make_snapshot(world, fractions=(0.5, 0.25, 0.25))
    export = run_export(world, snap, "cellpose", django_capture_on_commit_callbacks)
    assert export.status == ExportStatus.SUCCEEDED
    listed = s3_storages.list_objects_v2(Bucket=BUCKET, Prefix=export.prefix)["Contents"]
    in_bucket = {o["Key"][len(export.prefix):]: o["Size"] for o in listed}
    assert in_bucket == {f["path"]: f["size"] for f in export.files}  # every file once, nothing else

    # Read back over the S3 API (the download streams from the bucket).
    from tests.datasets.helpers import unzip

    root = unzip(export, tmp_path)
    rows = {r["name"]: r for r in snap.items.values_list("row", flat=True)}
    images, labels, names, *_ = cp_io.load_train_test_data(str(root / "train"))
    assert len(names) == snap.split_counts["train"]
    for name, lab in zip(names, labels, strict=True):
        row = rows[name.rsplit("/", 1)[-1].rsplit(".", 1)[0]]
        np.testing.assert_array_equal(lab, world.labels[row["image"]["id"]])

    # A second export in another format: OME-Zarr stores, many small objects.
    zexport = run_export(world, snap, "ome-zarr", django_capture_on_commit_callbacks)
    zkeys = [o["Key"] for o in s3_storages.list_objects_v2(Bucket=BUCKET, Prefix=zexport.prefix)["Contents"]]
    assert len(zkeys) == zexport.n_files and any(k.endswith("labels/cells/zarr.json") for k in zkeys)
    body = s3_storages.get_object(Bucket=BUCKET, Key=zexport.prefix + "manifest.json")["Body"].read()
    assert snap.content_hash.encode() in body
