"""The annotator's pages: who may open them, the queue's skip and submitted history."""

import pytest
from django.utils import timezone

from annotation.enums import AssignmentStatus, Role
from annotation.models import Assignment
from tests.factories import (
    AnnotationFactory,
    AssignmentFactory,
    ImageFactory,
    MembershipFactory,
    UserFactory,
)
from tests.ui.workspace_world import XSS, log_in, make_world, watch


@pytest.mark.django_db
def test_pages_are_for_the_projects_annotators_only(client, media_root):
    annotator, project, image, guideline, assignment = make_world()
    qa = UserFactory(username="qa")
    MembershipFactory(user=qa, project=project, role=Role.QA_LEAD)
    other = UserFactory(username="other")
    MembershipFactory(user=other, project=project, role=Role.ANNOTATOR)
    queue, task = "/annotate/nuclei/", f"/annotate/nuclei/tasks/{assignment.pk}/"

    assert client.get(queue).status_code == 302                         # log in first
    client.force_login(UserFactory(username="stranger"))
    assert client.get(queue).status_code == 404                         # non-member
    client.force_login(qa)
    assert client.get(queue).status_code == 403                         # not an annotator
    client.force_login(other)
    assert client.get(task).status_code == 404                          # someone else's task
    client.force_login(annotator)
    page = client.get(task)                                             # guideline first
    assert page.status_code == 200 and b'id="acknowledge"' in page.content
    assert XSS.encode() not in page.content                             # escaped
    client.post(f"/annotate/nuclei/guideline/{guideline.version}/acknowledge/",
                {"next": "https://evil.example/"})
    page = client.get(task)
    assert b'id="workspace-config"' in page.content and b"<script>alert" not in page.content
    # An off-site "next" after acknowledging is not followed.
    response = client.post(f"/annotate/nuclei/guideline/{guideline.version}/acknowledge/",
                           {"next": "https://evil.example/"})
    assert response["Location"] == queue


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_queue_shows_submitted_work_and_qa_comment_and_skips_with_a_reason(live_server, page, screenshot_dir):
    annotator, project, image, guideline, assignment = make_world()
    done = AssignmentFactory(image=ImageFactory(project=project), annotator=annotator,
                             status=AssignmentStatus.SUBMITTED, submitted_at=timezone.now())
    done.comment = f"Split the touching pair at the top left {XSS}"
    done.save()
    AnnotationFactory(assignment=done, time_spent_s=95)
    seen = watch(page)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/")
    page.click("text=Your tasks")
    submitted = page.locator("#queue-submitted tbody tr")
    assert submitted.count() == 1
    row = submitted.first.inner_text()
    assert "r1" in row and "95 s" in row and f"Split the touching pair at the top left {XSS}" in row
    page.click("#next-task")
    page.click("#acknowledge")
    page.wait_for_selector("#workspace[data-state=ready]")
    page.goto(f"{live_server.url}/annotate/nuclei/")
    page.fill(f"#queue-open tr[data-assignment='{assignment.pk}'] input[name=reason]", "Out of focus")
    page.click(f"#queue-open tr[data-assignment='{assignment.pk}'] button[type=submit]")
    page.wait_for_selector("#queue-skipped")
    page.screenshot(path=str(screenshot_dir / "ws-15-queue.png"), full_page=True)
    assignment = Assignment.objects.get(pk=assignment.pk)
    assert (assignment.status, assignment.skip_reason) == (AssignmentStatus.SKIPPED, "Out of focus")
    assert "Out of focus" in page.inner_text("#queue-skipped")
    assert seen.dialogs == [] and seen.page_errors == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_draft_older_than_the_latest_revision_is_not_restored_over_it(live_server, page):
    import numpy as np

    from annotation.services.drafts import draft_save
    from tests.factories import AcknowledgementFactory, png_bytes
    from tests.ui.workspace_world import HEIGHT, WIDTH, areas, wait_ready

    annotator, project, image, guideline, assignment = make_world()
    AcknowledgementFactory(user=annotator, guideline_version=guideline)
    old = np.zeros((HEIGHT, WIDTH), np.uint16)
    old[10:20, 10:20] = 1
    draft_save(actor=annotator, assignment=assignment, labels_data=png_bytes(old), base_revision=0)
    newer = np.zeros((HEIGHT, WIDTH), np.uint16)
    newer[50:60, 50:70], newer[100:104, 100:105] = 3, 4
    AnnotationFactory(assignment=assignment, labels=newer)
    watch(page)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/annotate/nuclei/tasks/{assignment.pk}/")
    wait_ready(page)
    assert areas(page) == {3: 200, 4: 20}
    assert "was not restored: revision 1 is newer" in page.inner_text("#status")
    assert page.evaluate("window.__annotator.config.latest.revision") == 1
