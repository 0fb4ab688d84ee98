"""The admin shows snapshots, items and exports read-only."""

from django.contrib.auth import get_user_model

from datasets.models import SnapshotItem
from tests.datasets.helpers import make_snapshot


def test_admin_lists_and_shows_snapshots_read_only(dsworld, client):
    snap = make_snapshot(dsworld)
    admin = get_user_model().objects.create_superuser("root", "root@example.org", "pw-1234567890")
    client.force_login(admin)
    page = client.get("/admin/datasets/datasetsnapshot/")
    assert page.status_code == 200 and snap.content_hash.encode() in page.content
    item = SnapshotItem.objects.filter(snapshot=snap).first()
    detail = client.get(f"/admin/datasets/snapshotitem/{item.pk}/change/")
    assert detail.status_code == 200 and b'name="split"' not in detail.content  # no editable field
    assert client.get("/admin/datasets/datasetsnapshot/add/").status_code == 403
    assert client.post(f"/admin/datasets/datasetsnapshot/{snap.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/datasets/datasetexport/").status_code == 200
