"""Fixtures and helpers for the annotator workspace tests: a project with a 16-bit image,
an annotator, a published guideline (with XSS payloads), and a browser page that runs
under a strict Content-Security-Policy and records dialogs and CSP reports."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from django.core.files.storage import default_storage

from annotation.enums import Role
from annotation.masks import read_label_image
from tests.factories import (
    PASSWORD,
    AssignmentFactory,
    GuidelineVersionFactory,
    ImageFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    png_bytes,
)

XSS = "<img src=x onerror=alert('xss')><script>alert('xss')</script>"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'"
)
HEIGHT, WIDTH = 180, 240


def ramp_image() -> np.ndarray:
    """A uint16 image with known values: a ramp to 40,000 plus bright discs, and two probes."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    img = (xx * 40000 // (WIDTH - 1)).astype(np.uint16)
    for cy, cx in ((50, 60), (120, 170)):
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < 15**2] = 52000
    img[10, 10] = 1000
    img[10, 11] = 30000
    return img


@dataclass
class Browsing:
    dialogs: list = field(default_factory=list)
    csp_errors: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)


def watch(page) -> Browsing:
    """Serve every document with :data:`CSP` and record dialogs, CSP reports and JS errors."""
    seen = Browsing()

    def add_csp(route):
        if route.request.resource_type != "document":
            route.continue_()
            return
        response = route.fetch(max_redirects=0)
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": CSP})

    page.route("**/*", add_csp)

    def on_dialog(dialog):
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: seen.csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda exc: seen.page_errors.append(str(exc)))
    return seen


def make_world(*, rules=None, slug="nuclei", name="Nuclei plate 7"):
    annotator = UserFactory(username="ana")
    project = ProjectFactory(slug=slug, name=name, cell_classes=["nucleus", XSS])
    MembershipFactory(user=annotator, project=project, role=Role.ANNOTATOR)
    image = ImageFactory(
        project=project, content=png_bytes(ramp_image()), height=HEIGHT, width=WIDTH,
        original_name=f"plate7 {XSS}.png",
    )
    guideline = GuidelineVersionFactory(
        project=project, published=True, title=f"Nuclei {XSS}",
        body=f"# Outline nuclei\n\n**Split** touching nuclei. {XSS}\n\n[bad link](javascript:alert(1))",
        rules=rules if rules is not None else {},
    )
    assignment = AssignmentFactory(image=image, annotator=annotator)
    return annotator, project, image, guideline, assignment


def log_in(page, base_url: str, username: str = "ana") -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def open_task(page, base_url: str, slug: str = "nuclei", *, acknowledge: bool = True) -> None:
    """From the queue: start the next task, acknowledge the guideline, wait for the editor."""
    page.goto(f"{base_url}/annotate/{slug}/")
    page.click("#next-task")
    if acknowledge:
        page.click("#acknowledge")
    wait_ready(page)


def wait_ready(page) -> None:
    page.wait_for_selector("#workspace[data-state=ready]", timeout=20000)


def drag(page, points, *, steps: int = 6) -> None:
    """Press at the first image point, move through the others, release (real mouse events)."""
    first = page.evaluate("([x, y]) => window.__annotator.clientPoint(x, y)", list(points[0]))
    page.mouse.move(*first)
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*page.evaluate("([x, y]) => window.__annotator.clientPoint(x, y)", list(point)), steps=steps)
    page.mouse.up()


def click_at(page, x: float, y: float) -> None:
    page.mouse.click(*page.evaluate("([x, y]) => window.__annotator.clientPoint(x, y)", [x, y]))


def set_range(page, selector: str, value) -> None:
    page.eval_on_selector(
        selector,
        "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', {bubbles: true})); "
        "el.dispatchEvent(new Event('change', {bubbles: true})); }",
        value,
    )


def areas(page) -> dict[int, int]:
    return {int(k): v for k, v in page.evaluate("window.__annotator.areas()").items()}


def stored_labels(annotation) -> np.ndarray:
    with default_storage.open(annotation.mask.name, "rb") as fh:
        return read_label_image(fh.read(), max_pixels=10**8)


def capsule_area(ax, ay, bx, by, r) -> int:
    """Pixels whose centres lie within r of the segment: what the brush paints."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH] + 0.5
    dx, dy = bx - ax, by - ay
    t = np.clip(((xx - ax) * dx + (yy - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    return int((((xx - (ax + t * dx)) ** 2 + (yy - (ay + t * dy)) ** 2) <= r * r).sum())
