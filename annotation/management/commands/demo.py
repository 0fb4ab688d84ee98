"""``python manage.py demo``: a demo project with synthetic microscopy data, ready to log in to.

Runs on the embedded default (SQLite, eager tasks, local media) with no services. It is
idempotent: a second run reuses what exists and tops up what is missing (``--reset``
deletes the demo project first). Everything is created through the services, so the
demo exercises the same checks as the API.
"""

from __future__ import annotations

import secrets

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from scipy import ndimage

from annotation.enums import AssignmentStatus, Role
from annotation.masks import write_label_png
from annotation.models import Annotation, Assignment, Image, Membership, Project
from annotation.services import (
    ImageMetadata,
    annotation_submit_labels,
    assignments_generate,
    images_upload_many,
    membership_add,
    project_create,
)
from annotation.services.tokens import token_create
from guidelines.selectors import acknowledgement_exists, guideline_published_get
from guidelines.services import (
    acknowledgement_create,
    guideline_version_create,
    guideline_version_publish,
)
from qa.simulate import AVERAGE, EXPERT, GOOD, simulate_annotation, simulate_image

SLUG = "demo-nuclei"
USERS = [
    ("demo-manager", Role.MANAGER),
    ("demo-qa", Role.QA_LEAD),
    ("demo-ml", Role.ML_ENGINEER),
    ("demo-annotator1", Role.ANNOTATOR),
    ("demo-annotator2", Role.ANNOTATOR),
    ("demo-annotator3", Role.ANNOTATOR),
]
#: demo-admin (a superuser for /admin/) is also a manager of the demo project.
ADMIN = ("demo-admin", Role.MANAGER)
PROFILES = [EXPERT, GOOD, AVERAGE]
BASE_URL = "http://127.0.0.1:8000"
GUIDELINE_BODY = """# Nuclei, Hoechst, 20x

1. Outline **every nucleus** whose centre lies inside the image, including faint ones.
2. Split touching nuclei along the dimmest path between them; never merge two nuclei.
3. Nuclei cut by the image border are labelled up to the border.
4. Do not label debris: small, very bright, irregular specks without nuclear texture.
5. Each nucleus gets one id; background is 0.
"""
# Machine-checked rules (docs/guideline-rules.md); warnings are shown, blocking ones refuse.
GUIDELINE_RULES = {
    "max_instances": {"value": 500, "severity": "blocking"},
    "min_area": {"value": 30, "unit": "px", "severity": "warning",
                 "note": "Debris is not labelled (rule 4)."},
    "max_area": {"value": 2000, "unit": "px", "severity": "warning"},
    "max_pieces": {"value": 1, "severity": "warning"},
    "max_holes": {"value": 0, "severity": "warning"},
    "min_solidity": {"value": 0.8, "severity": "warning"},
    "border": {"allowed": True, "severity": "warning"},
}


class Command(BaseCommand):
    help = "Create (or top up) a demo project with synthetic images, members and annotations."
    base_url = BASE_URL

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="delete the demo project first")
        parser.add_argument("--images", type=int, default=6, help="number of images (default 6)")
        parser.add_argument("--annotated", type=int, default=2,
                            help="images whose assignments get submitted masks (default 2)")
        parser.add_argument("--size", type=int, default=192, help="image height and width in px")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--password", default=None,
                            help="password for every demo user (default: a new random one)")
        parser.add_argument("--base-url", default=BASE_URL,
                            help=f"where the server will answer, for the printed links (default {BASE_URL})")

    def handle(self, *args, **opts):
        self.base_url = opts["base_url"].rstrip("/")
        if opts["images"] < 1 or opts["size"] < 64:
            self.stderr.write("--images must be >= 1 and --size >= 64")
            raise SystemExit(2)
        call_command("migrate", verbosity=0, interactive=False)
        password = opts["password"] or secrets.token_urlsafe(9)
        if opts["reset"]:
            self._reset()
        users = self._users(password)
        with transaction.atomic():
            project = self._project(users)
            sims = self._images(project, users["demo-manager"], n=opts["images"], size=opts["size"],
                                seed=opts["seed"])
            guideline = self._guideline(project, users)
            result = assignments_generate(actor=users["demo-manager"], project=project)
        submitted = self._annotations(project, sims[: opts["annotated"]], users, seed=opts["seed"])
        # Later steps (QA, datasets, training) go here, each a method that builds its part
        # through the services and adds a line to the report or to first_steps().
        # Tokens are stored hashed: each run issues a fresh one per user (shown only now).
        tokens = {name: token_create(user=user, name="demo").key for name, user in users.items()}
        self._report(project, guideline, result, submitted, password, tokens)
        self._first_steps_report(project, tokens)
        # QA workflow (qa app): its own k = 3 project, QA runs, gates, reviews.
        from qa.services.demo import qa_demo_run

        self.stdout.write("\n".join(qa_demo_run(users=users, seed=opts["seed"]).lines()))

    # ------------------------------------------------------------------ steps

    def _reset(self) -> None:
        project = Project.objects.filter(slug=SLUG).first()
        if project is None:
            return
        names = list(Image.objects.filter(project=project).values_list("file", flat=True))
        names += list(
            Annotation.objects.filter(assignment__image__project=project).values_list("mask", flat=True)
        )
        project.delete()
        for name in names:
            default_storage.delete(name)
        self.stdout.write(f"reset: deleted project {SLUG} and {len(names)} stored files")

    def _users(self, password: str) -> dict:
        User = get_user_model()
        users = {}
        admin, _ = User.objects.get_or_create(username="demo-admin")
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        users["demo-admin"] = admin
        add_project = Permission.objects.get(codename="add_project", content_type__app_label="annotation")
        for username, _role in USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.save()
            users[username] = user
        users["demo-manager"].user_permissions.add(add_project)
        return users

    def _project(self, users) -> Project:
        manager = users["demo-manager"]
        project = Project.objects.filter(slug=SLUG).first()
        if project is None:
            # The permission cache was filled before the grant above; reload the user.
            manager = get_user_model().objects.get(pk=manager.pk)
            project = project_create(
                actor=manager, name="Demo: nuclei (Hoechst, 20x)", slug=SLUG,
                description="Synthetic fluorescence nuclei made by qa.simulate.",
                cell_classes=["nucleus"], annotators_per_image=2, gold_share=0.2,
            )
        for username, role in [ADMIN, *USERS]:
            if not Membership.objects.filter(project=project, user=users[username]).exists():
                membership_add(actor=users["demo-manager"], project=project, user=users[username], role=role)
        return project

    def _images(self, project, manager, *, n: int, size: int, seed: int):
        sims, uploads = [], []
        for i in range(n):
            sim = simulate_image(shape=(size, size), n_cells=int(size * size / 1200), seed=seed + i)
            sims.append(sim)
            uploads.append(ContentFile(_png16(sim.image), name=f"demo_plate1_{_well(i)}_s1.png"))
        images_upload_many(
            actor=manager, project=project, uploads=uploads,
            metadata=ImageMetadata(plate="DEMO-P1", batch="demo", modality="fluorescence",
                                   stain="Hoechst 33342", extra={"simulated": True, "seed": seed}),
        )
        # Wells per image (the batch call shares metadata; wells differ per file).
        for i, upload in enumerate(uploads):
            Image.objects.filter(project=project, original_name=upload.name).update(well=_well(i), site="1")
        return sims

    def _guideline(self, project, users):
        guideline = guideline_published_get(project=project)
        if guideline is None:
            draft = guideline_version_create(
                actor=users["demo-manager"], project=project, title="Nuclei v1",
                body=GUIDELINE_BODY, rules=GUIDELINE_RULES, changelog="First version.",
            )
            guideline = guideline_version_publish(actor=users["demo-manager"], version=draft)
        for username, role in USERS:
            if role in (Role.ANNOTATOR, Role.QA_LEAD) and not acknowledgement_exists(
                user=users[username], guideline_version=guideline
            ):
                acknowledgement_create(actor=users[username], version=guideline)
        return guideline

    def _annotations(self, project, sims, users, *, seed: int) -> int:
        annotators = [u for u, r in USERS if r == Role.ANNOTATOR]
        images = list(Image.objects.filter(project=project).order_by("id")[: len(sims)])
        submitted = 0
        for image, sim in zip(images, sims, strict=True):
            for assignment in Assignment.objects.filter(image=image).select_related("annotator", "image__project"):
                if assignment.status == AssignmentStatus.SUBMITTED:
                    continue
                k = annotators.index(assignment.annotator.username)
                labels = simulate_annotation(sim, PROFILES[k], seed=seed * 1000 + image.pk * 10 + k).labels
                if submitted == 0:
                    labels = _with_speck(labels)  # so the demo shows a guideline warning
                annotation_submit_labels(
                    actor=assignment.annotator, assignment=assignment, labels=labels,
                    idempotency_key=f"demo-{image.sha256[:16]}-{k}", time_spent_s=60.0 + 15 * k,
                )
                submitted += 1
        return submitted

    def _report(self, project, guideline, result, submitted, password, tokens) -> None:
        images = Image.objects.filter(project=project)
        assignments = Assignment.objects.filter(image__project=project)
        annotations = Annotation.objects.filter(assignment__image__project=project)
        w = self.stdout.write
        w(self.style.SUCCESS(f"Demo project '{project.slug}' is ready."))
        w(f"  images:       {images.count()} synthetic 16-bit fluorescence images "
          f"({images.filter(is_gold=True).count()} gold), made by qa.simulate")
        w(f"  guideline:    v{guideline.version} '{guideline.title}' ({guideline.status}) "
          f"with {len(guideline.rules)} rules")
        w(f"  assignments:  {assignments.count()} ({result.created} new this run), "
          f"k={project.annotators_per_image}")
        w(f"  annotations:  {annotations.count()} submitted ({submitted} new this run)")
        warned = annotations.exclude(rule_warnings=[]).count()
        w(f"  rule checks:  {warned} annotations carry guideline warnings (see rule_warnings)")
        w("")
        w(f"Log in (python manage.py runserver, then {self.base_url}/):")
        w(f"  admin:     {self.base_url}/admin/     user demo-admin (superuser, and a manager of "
          f"{project.slug})  password {password}")
        w(f"  API:       {self.base_url}/api/v1/ (browsable when logged in)   docs: {self.base_url}/api/docs/")
        for username, role in [ADMIN, *USERS]:
            w(f"  {username:<16} role {role.value:<12} password {password}  token {tokens[username]}")

    def first_steps(self, project, tokens) -> dict[str, str]:
        """What each demo user can try first, by user name (one line each)."""
        api = f"{self.base_url}/api/v1/projects/{project.slug}"

        def curl(user: str, rest: str) -> str:
            return f'curl -H "Authorization: Token {tokens[user]}" {rest}'

        return {
            "demo-admin": f"browse every table at {self.base_url}/admin/ (assignments, annotations, "
            "jobs)",
            "demo-manager": "upload images: "
            + curl("demo-manager", f"-F file=@a.tif -F file=@b.png {api}/images/")
            + "; then generate their assignments: "
            + curl("demo-manager", f"-X POST {api}/assignments/generate/"),
            "demo-qa": f"log in and open {self.base_url}/qa/demo-qa/ (agreement, review queue, "
            "review page); or read the newest mask of every task: "
            + curl("demo-qa", f'"{api}/annotations/?latest=true"')
            + " (add &annotator=demo-annotator2 for one annotator)",
            "demo-ml": f"log in and open {self.base_url}/ml/demo-qa/ (snapshot, export, training run); "
            "or export the masks: python manage.py export_annotations "
            f"--project {project.slug} --out export/ --format cellpose",
            "demo-annotator1": f"log in and open {self.base_url}/annotate/{project.slug}/ to label "
            "the next image",
            "demo-annotator3": "lease your next image over the API: "
            + curl("demo-annotator3", f"-X POST {api}/assignments/next/"),
        }

    def _first_steps_report(self, project, tokens) -> None:
        w = self.stdout.write
        w("")
        w("Try first, as each role:")
        for username, step in self.first_steps(project, tokens).items():
            w(f"  {username:<16} {step}")


def _with_speck(labels: np.ndarray) -> np.ndarray:
    """``labels`` plus a 3 x 3 speck of debris labelled as a cell, away from the others."""
    free = ndimage.binary_erosion(labels == 0, iterations=2, border_value=0)
    if not free.any():
        return labels
    row, col = np.argwhere(free)[0]
    out = labels.copy()
    out[row - 1 : row + 2, col - 1 : col + 2] = int(labels.max()) + 1
    return out


def _png16(image: np.ndarray) -> bytes:
    """The simulated uint16 image as a 16-bit greyscale PNG."""
    return write_label_png(image.astype(np.uint16))


def _well(i: int) -> str:
    return f"{'ABCDEFGH'[i // 12 % 8]}{i % 12 + 1:02d}"
