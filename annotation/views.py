"""Server-rendered pages of the annotation app (thin: selectors in, template out)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.shortcuts import render

from annotation.enums import AssignmentStatus
from annotation.models import Membership


@login_required
def home(request):
    memberships = (
        Membership.objects.filter(user=request.user)
        .select_related("project")
        .annotate(
            n_images=Count("project__images", distinct=True),
            n_open=Count(
                "project__images__assignments",
                filter=Q(project__images__assignments__annotator=request.user)
                & Q(project__images__assignments__status__in=[
                    AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS]),
                distinct=True,
            ),
        )
        .order_by("project__slug")
    )
    return render(request, "annotation/home.html", {"memberships": memberships})
