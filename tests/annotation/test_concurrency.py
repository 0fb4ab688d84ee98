"""next_task under concurrency on PostgreSQL: 20 threads, 10 assignments, each given once."""

import threading

import pytest
from django.db import close_old_connections, connection

from annotation.enums import Role
from annotation.models import Assignment
from annotation.services import assignment_next
from tests.factories import (
    AssignmentFactory,
    ImageFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("claim", ["skip_locked", "conditional_update"])
def test_twenty_threads_over_ten_assignments_give_each_annotator_one_lease(media_root, monkeypatch, claim):
    """Both claim strategies: row locks (PostgreSQL's) and the conditional UPDATE SQLite uses."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (run with DATABASE_URL=postgres://...)")
    from annotation.services import assignments as module

    monkeypatch.setattr(module, "_use_row_locks", lambda: claim == "skip_locked")
    project = ProjectFactory()
    annotators = [UserFactory(), UserFactory()]
    for user in annotators:
        MembershipFactory(user=user, project=project, role=Role.ANNOTATOR)
    for _ in range(5):
        image = ImageFactory(project=project)
        for user in annotators:
            AssignmentFactory(image=image, annotator=user)

    barrier = threading.Barrier(20)
    results: list[tuple[int, int | None]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        user = annotators[i % 2]
        try:
            barrier.wait()
            got = assignment_next(actor=user, project=project)
            with lock:
                results.append((user.pk, got.pk if got else None))
        except BaseException as exc:  # collected and re-raised in the main thread
            with lock:
                errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    # Ten concurrent requests per annotator: each annotator ends up with exactly one lease,
    # and every one of their requests answers with that same task (none with another).
    assert len(results) == 20 and all(pk is not None for _, pk in results)
    owners = dict(Assignment.objects.values_list("id", "annotator_id"))
    assert all(owners[pk] == user_pk for user_pk, pk in results)
    for user in annotators:
        held = {pk for user_pk, pk in results if user_pk == user.pk}
        assert len(held) == 1
        assert Assignment.objects.filter(annotator=user, status="in_progress").count() == 1
    assert Assignment.objects.filter(status="pending").count() == 8  # the rest wait their turn
