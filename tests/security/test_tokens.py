"""API tokens: hashed, named, expiring, listed and revoked by their owner, killed by a
password change or by leaving the last project role."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import ApiToken, Membership
from annotation.services.tokens import token_create
from tests.api.uploads import url

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/tokens/"


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_create_list_use_and_revoke_through_the_api(world, api_client):
    api_client.force_authenticate(world.users["qa_lead"])
    response = api_client.post(TOKENS, {"name": "review script", "expires_in_days": 30})
    assert response.status_code == 201, response.content
    body = response.json()
    key = body["key"]
    assert key.startswith(f"cc_{body['prefix']}_") and len(key) > 40
    assert body["name"] == "review script"
    expires = timezone.datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=29, hours=23) < expires - timezone.now() <= timedelta(days=30)

    # Stored hashed: no column holds the token, the digest is its SHA-256.
    row = ApiToken.objects.get(pk=body["id"])
    assert key not in {row.digest, row.prefix, row.name, row.password_fingerprint}
    assert row.digest == hashlib.sha256(key.encode()).hexdigest()

    # Listed without the key; usable; last use recorded.
    listed = api_client.get(TOKENS).json()["results"]
    assert [(t["id"], t["name"]) for t in listed] == [(row.pk, "review script")]
    assert "key" not in listed[0]
    assert bearer(key).get(url("world")).json()["slug"] == "world"
    as_bearer = APIClient()
    as_bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert as_bearer.get(url("world")).status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None

    # Another user cannot see or revoke it; its owner can.
    api_client.force_authenticate(world.users["manager"])
    assert api_client.get(TOKENS).json()["results"] == []
    assert api_client.delete(f"{TOKENS}{row.pk}/").status_code == 404
    assert bearer(key).get(url("world")).status_code == 200
    api_client.force_authenticate(world.users["qa_lead"])
    assert api_client.delete(f"{TOKENS}{row.pk}/").status_code == 204
    response = bearer(key).get(url("world"))
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."
    assert not ApiToken.objects.filter(pk=row.pk).exists()


def test_token_input_is_checked(world, api_client):
    api_client.force_authenticate(world.users["annotator"])
    assert api_client.post(TOKENS, {"name": ""}).status_code == 400
    response = api_client.post(TOKENS, {"name": "x", "expires_in_days": 10_000})
    assert response.status_code == 400
    assert "expires_in_days" in response.json()
    assert ApiToken.objects.count() == 0
    assert APIClient().post(TOKENS, {"name": "anon"}).status_code == 401


def test_expired_token_is_refused_and_deleted(world):
    created = token_create(user=world.users["annotator"], name="old", expires_in_days=1)
    client = bearer(created.key)
    assert client.get(url("world")).status_code == 200
    ApiToken.objects.filter(pk=created.token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = client.get(url("world"))
    assert response.status_code == 401
    assert response.json()["detail"] == "Token expired; create a new one."
    assert not ApiToken.objects.filter(pk=created.token.pk).exists()


def test_password_change_revokes_every_token(world):
    user = world.users["ml_engineer"]
    keys = [token_create(user=user, name=f"t{i}").key for i in range(2)]
    other = token_create(user=world.users["manager"], name="unrelated").key
    assert all(bearer(k).get(url("world")).status_code == 200 for k in keys)
    user.set_password("a-new-password-42")
    user.save()
    for key in keys:
        response = bearer(key).get(url("world"))
        assert response.status_code == 401
        assert "password changed" in response.json()["detail"]
    assert ApiToken.objects.filter(user=user).count() == 0
    assert bearer(other).get(url("world")).status_code == 200


def test_leaving_the_last_project_role_revokes_tokens(world, api_client):
    leaving = world.users["annotator2"]
    staying = world.users["qa_lead"]
    leaving_key = token_create(user=leaving, name="laptop").key
    staying_key = token_create(user=staying, name="laptop").key
    # qa_lead has a second project, so removing one membership leaves them a role.
    from tests.factories import MembershipFactory, ProjectFactory

    MembershipFactory(user=staying, project=ProjectFactory(slug="other"), role="qa_lead")

    api_client.force_authenticate(world.users["manager"])
    for user in (leaving, staying):
        membership = Membership.objects.get(user=user, project=world.project)
        assert api_client.delete(url("world", "members", membership.pk)).status_code == 204
    assert bearer(leaving_key).get("/api/v1/projects/").status_code == 401
    assert ApiToken.objects.filter(user=leaving).count() == 0
    response = bearer(staying_key).get("/api/v1/projects/")
    assert response.status_code == 200
    assert [p["slug"] for p in response.json()["results"]] == ["other"]


def test_inactive_user_token_is_refused(world):
    user = world.users["annotator"]
    key = token_create(user=user, name="t").key
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert bearer(key).get(url("world")).status_code == 401
