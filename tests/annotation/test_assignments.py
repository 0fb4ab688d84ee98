"""Assignment generation (k distinct annotators, balance, gold, idempotency) and leasing."""

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone

from annotation.enums import Role
from annotation.models import Assignment, Image
from annotation.services import (
    assignment_next,
    assignment_skip,
    assignments_expire,
    assignments_generate,
)
from config.errors import InvalidInput, PermissionDenied
from tests.factories import ImageFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def _project(n_images=6, n_annotators=3, k=2, gold_share=0.0):
    project = ProjectFactory(annotators_per_image=k, gold_share=gold_share)
    manager = UserFactory()
    MembershipFactory(user=manager, project=project, role=Role.MANAGER)
    annotators = [UserFactory() for _ in range(n_annotators)]
    for user in annotators:
        MembershipFactory(user=user, project=project, role=Role.ANNOTATOR)
    images = [ImageFactory(project=project) for _ in range(n_images)]
    return project, manager, annotators, images


def test_each_image_goes_to_k_distinct_annotators_with_equal_load(media_root):
    project, manager, annotators, images = _project(n_images=6, n_annotators=3, k=2)
    result = assignments_generate(actor=manager, project=project)
    assert result.as_dict() == {"images": 6, "annotators": 3, "gold_images": 0, "created": 12}
    per_image = Counter(Assignment.objects.values_list("image_id", flat=True))
    assert set(per_image.values()) == {2}
    per_user = Counter(Assignment.objects.values_list("annotator_id", flat=True))
    assert sorted(per_user.values()) == [4, 4, 4]


def test_gold_images_go_to_every_annotator(media_root):
    project, manager, annotators, images = _project(n_images=4, n_annotators=3, k=2, gold_share=0.5)
    result = assignments_generate(actor=manager, project=project)
    gold = set(Image.objects.filter(project=project, is_gold=True).values_list("id", flat=True))
    assert len(gold) == 2 == result.gold_images
    per_image = Counter(Assignment.objects.values_list("image_id", flat=True))
    assert {per_image[i] for i in gold} == {3}
    assert {n for i, n in per_image.items() if i not in gold} == {2}
    assert result.created == 10
    per_user = Counter(Assignment.objects.values_list("annotator_id", flat=True))
    assert sorted(per_user.values()) == [3, 3, 4]


def test_generation_is_idempotent_and_tops_up_new_images(media_root):
    project, manager, annotators, images = _project(n_images=3, n_annotators=2, k=2)
    assert assignments_generate(actor=manager, project=project).created == 6
    assert assignments_generate(actor=manager, project=project).created == 0
    ImageFactory(project=project)
    assert assignments_generate(actor=manager, project=project).created == 2
    assert Assignment.objects.count() == 8


def test_generation_needs_k_annotators(media_root):
    project, manager, annotators, images = _project(n_images=2, n_annotators=1, k=2)
    with pytest.raises(InvalidInput, match="gives each image to 2 annotators but has 1"):
        assignments_generate(actor=manager, project=project)
    assert Assignment.objects.count() == 0


def test_generation_is_for_managers(media_root):
    project, manager, annotators, images = _project()
    with pytest.raises(PermissionDenied, match="this needs manager"):
        assignments_generate(actor=annotators[0], project=project)


def test_next_hands_out_in_order_then_nothing(media_root):
    project, manager, annotators, images = _project(n_images=2, n_annotators=2, k=2)
    assignments_generate(actor=manager, project=project)
    me = annotators[0]
    now = timezone.now()
    first = assignment_next(actor=me, project=project, now=now)
    assert first.status == "in_progress"
    assert first.lease_expires_at == now + dt.timedelta(minutes=60)
    assignment_skip(actor=me, assignment=first, reason="out of focus")
    second = assignment_next(actor=me, project=project, now=now)
    assert (first.image_id, second.image_id) == (images[0].pk, images[1].pk)
    assignment_skip(actor=me, assignment=second, reason="no cells")
    assert assignment_next(actor=me, project=project, now=now) is None


def test_next_returns_the_held_lease_instead_of_leasing_another(media_root):
    project, manager, annotators, images = _project(n_images=3, n_annotators=2, k=2)
    assignments_generate(actor=manager, project=project)
    me, other = annotators
    start = timezone.now()
    held = assignment_next(actor=me, project=project, now=start)
    again = assignment_next(actor=me, project=project, now=start + dt.timedelta(minutes=30))
    assert again.pk == held.pk
    assert again.lease_expires_at == start + dt.timedelta(minutes=60)  # the lease it had
    assert Assignment.objects.filter(annotator=me, status="in_progress").count() == 1
    # Another annotator's lease is theirs; it does not hold this one back.
    assert assignment_next(actor=other, project=project, now=start).annotator_id == other.pk
    # Once the lease runs out, next hands out work again (the same task, re-leased).
    later = start + dt.timedelta(minutes=61)
    renewed = assignment_next(actor=me, project=project, now=later)
    assert renewed.pk == held.pk
    assert renewed.lease_expires_at == later + dt.timedelta(minutes=60)


def test_skip_needs_a_reason_and_keeps_it(media_root):
    project, manager, annotators, images = _project(n_images=1, n_annotators=2, k=2)
    assignments_generate(actor=manager, project=project)
    me = annotators[0]
    task = assignment_next(actor=me, project=project)
    for blank in ("", "   \n"):
        with pytest.raises(InvalidInput, match="say why you skip this task") as info:
            assignment_skip(actor=me, assignment=task, reason=blank)
        assert info.value.field == "reason"
    task.refresh_from_db()
    assert (task.status, task.skip_reason) == ("in_progress", "")
    skipped = assignment_skip(actor=me, assignment=task, reason="  debris only ")
    assert (skipped.status, skipped.skip_reason) == ("skipped", "debris only")


def test_expired_lease_is_reissued(media_root):
    project, manager, annotators, images = _project(n_images=1, n_annotators=2, k=2)
    assignments_generate(actor=manager, project=project)
    me = annotators[0]
    start = timezone.now()
    taken = assignment_next(actor=me, project=project, now=start)
    later = start + dt.timedelta(minutes=61)
    again = assignment_next(actor=me, project=project, now=later)
    assert again.pk == taken.pk
    assert again.lease_expires_at == later + dt.timedelta(minutes=60)


def test_leases_expire_marks_them_expired_and_next_reissues(media_root):
    project, manager, annotators, images = _project(n_images=1, n_annotators=2, k=2)
    assignments_generate(actor=manager, project=project)
    me = annotators[0]
    start = timezone.now() - dt.timedelta(hours=2)
    taken = assignment_next(actor=me, project=project, now=start)
    assert assignments_expire() == 1
    taken.refresh_from_db()
    assert taken.status == "expired"
    assert assignment_next(actor=me, project=project).pk == taken.pk


def test_next_is_for_annotators(media_root):
    project, manager, annotators, images = _project()
    with pytest.raises(PermissionDenied):
        assignment_next(actor=manager, project=project)


def test_generation_reports_progress_per_batch(media_root, monkeypatch):
    from annotation.services import assignments as module

    monkeypatch.setattr(module, "_BATCH", 2)
    project, manager, annotators, images = _project(n_images=5, n_annotators=2, k=2)
    calls = []
    result = assignments_generate(actor=manager, project=project, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert result.created == 10
