"""No stored file is served without a permission check, in any mode (DJANGO_DEBUG=1 too):
``/media/`` is not a route; images and masks come only from the checked endpoints."""

from __future__ import annotations

import importlib

import pytest
from django.test import Client, override_settings
from django.urls import clear_url_caches

from tests.factories import AnnotationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def urlconf_in_mode(request, settings):
    """The URL configuration as imported with DEBUG off or on (what ``make demo`` runs)."""
    import config.urls

    with override_settings(DEBUG=request.param):
        clear_url_caches()
        importlib.reload(config.urls)
        yield request.param
    clear_url_caches()
    importlib.reload(config.urls)


@pytest.fixture
def stored(world):
    annotation = AnnotationFactory(
        assignment=world.assignments["annotator"], created_by=world.users["annotator"]
    )
    return world, world.images[0], annotation


def test_media_urls_are_refused_to_everyone(urlconf_in_mode, stored, media_root):
    world, image, annotation = stored
    for name in (image.file.name, annotation.mask.name):
        assert (media_root / name).is_file()  # the file exists; it is only not served
        for user in (None, world.users["non_member"], world.users["manager"]):
            client = Client()
            if user is not None:
                client.force_login(user)
            response = client.get(f"/media/{name}")
            assert response.status_code == 404, (urlconf_in_mode, name, user)
            assert image.file.open("rb").read()[:8] not in b"".join(response)


def test_image_download_is_checked(urlconf_in_mode, stored):
    world, image, _ = stored
    url = f"/api/v1/projects/world/images/{image.pk}/file/"
    assert Client().get(url).status_code in (401, 403)
    outsider = Client()
    outsider.force_login(world.users["non_member"])
    assert outsider.get(url).status_code == 404
    member = Client()
    member.force_login(world.users["annotator"])
    response = member.get(url)
    assert response.status_code == 200
    with image.file.open("rb") as fh:
        assert b"".join(response.streaming_content) == fh.read()


def test_mask_download_is_checked(urlconf_in_mode, stored):
    world, _, annotation = stored
    url = f"/api/v1/projects/world/annotations/{annotation.pk}/mask/"
    assert Client().get(url).status_code in (401, 403)
    outsider = Client()
    outsider.force_login(world.users["non_member"])
    assert outsider.get(url).status_code == 404
    qa = Client()
    qa.force_login(world.users["qa_lead"])
    response = qa.get(url)
    assert response.status_code == 200
    with annotation.mask.open("rb") as fh:
        assert b"".join(response.streaming_content) == fh.read()
