"""The review queue and the review actions on one image."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from annotation.access import check_project_role
from annotation.api.base import ProjectScopedView
from annotation.models import Annotation
from annotation.selectors import image_get
from config.errors import InvalidInput
from qa import selectors, services
from qa.models import ImageQaState
from qa.serializers import (
    ReviewInput,
    ReviewQueueFilter,
    approved_output,
    decision_output,
    qa_run_output,
    review_output,
)
from qa.services.policies import ACTING_ROLES


def _queue_row(state: ImageQaState) -> dict:
    image = state.image
    gate = state.latest_gate
    return {
        "image": image.pk, "original_name": image.original_name, "status": state.status,
        "agreement": state.agreement, "n_flags": state.n_flags, "n_disputed": state.n_disputed,
        "qa_run": state.latest_run_id, "decision": decision_output(gate),
        "metadata": {"plate": image.plate, "well": image.well, "site": image.site,
                     "batch": image.batch, "modality": image.modality, "stain": image.stain,
                     "is_gold": image.is_gold},
    }


class ReviewQueueView(ProjectScopedView):
    filter_serializer_class = ReviewQueueFilter

    @extend_schema(parameters=[ReviewQueueFilter], responses={200: OpenApiTypes.OBJECT},
                   description="Images needing review, worst first (lowest agreement, most flags, "
                   "most disputed cells); filter by image metadata, annotator or status.")
    def get(self, request, slug):
        qs = selectors.review_queue(user=request.user, project=self.get_project(), filters=self.get_filters())
        page = self.paginate_queryset(qs)
        return self.get_paginated_response([_queue_row(s) for s in page])


class ImageReviewView(ProjectScopedView):
    write_roles = ACTING_ROLES
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(responses={200: OpenApiTypes.OBJECT},
                   description="Everything a reviewer needs: the image, every annotation, the "
                   "consensus, the flags, the decision, and the review history.")
    def get(self, request, slug, pk):
        project = self.get_project()
        image, run, _ = selectors.image_qa_get(user=request.user, project=project, image_id=pk)
        check_project_role(user=request.user, project=project, roles=selectors.READERS)
        state = ImageQaState.objects.filter(image=image).select_related("approved_mask__policy").first()
        base = f"/api/v1/projects/{project.slug}"
        return Response({
            "image": {"id": image.pk, "file": f"{base}/images/{image.pk}/file/",
                      "original_name": image.original_name, "width": image.width, "height": image.height,
                      "is_gold": image.is_gold},
            "status": state.status if state else None,
            "masks": {
                "annotations": [{"id": a["id"], "annotator": a["annotator"], "revision": a["revision"],
                                 "url": f"{base}/annotations/{a['id']}/mask/"}
                                for a in qa_run_output(run, None)["annotations"]],
                "consensus": f"{base}/images/{image.pk}/qa/consensus/",
            },
            "qa": qa_run_output(run, selectors.gate_decision_latest(qa_run=run), state=state),
            "approved": approved_output(state.approved_mask) if state else None,
            "reviews": [review_output(d) for d in selectors.image_review_history(image=image)],
        })

    @extend_schema(request={"application/json": ReviewInput, "multipart/form-data": ReviewInput},
                   responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT},
                   description="One review action (201 with the decision). `accept_edited` with "
                   "`dry_run=true` stores nothing and answers 200 with the corrected mask's check "
                   "against the published guideline's rules: `accepted` and every violation.")
    def post(self, request, slug, pk):
        project = self.get_project()
        image = image_get(user=request.user, project=project, image_id=pk)
        data = ReviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        f = data.validated_data
        if f["dry_run"]:
            return Response(services.review_edit_check(actor=request.user, image=image, mask=f.get("mask")))
        annotation = None
        if f.get("annotation"):
            annotation = Annotation.objects.filter(pk=f["annotation"], assignment__image=image).first()
            if annotation is None:
                raise InvalidInput(f"image {pk} has no annotation {f['annotation']}", field="annotation")
        annotator = None
        if f.get("annotator"):
            annotator = get_user_model().objects.filter(username=f["annotator"]).first()
            if annotator is None:
                raise InvalidInput(f"no user {f['annotator']!r}", field="annotator")
        decision = services.review_act(
            actor=request.user, image=image, action=f["action"], annotation=annotation,
            mask=f.get("mask"), cells=f.get("cells") or [], annotator=annotator,
            comment=f["comment"], reason=f["reason"],
        )
        return Response(review_output(decision), status=status.HTTP_201_CREATED)
