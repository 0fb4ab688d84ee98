"""Per image: the latest QA run (and running one now), consensus and approved mask files, gold truth."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from annotation.api.annotations import IgnoreFormatQueryNegotiation
from annotation.api.base import ProjectScopedView, rendered_mask_response, stored_file_response
from annotation.enums import Role
from annotation.selectors import image_get
from annotation.serializers import AnnotationMaskQuery, JobOutput
from annotation.services.mask_export import image_file_stem, mask_render
from config.errors import InvalidInput, NotFound
from qa import selectors, services
from qa.models import ApprovedMask, ImageQaState, QaModelReference
from qa.serializers import GoldInput, QaRunInput, gold_output, qa_run_output, qa_run_own_output
from qa.services.masks import mask_read
from qa.services.policies import ACTING_ROLES

FILE_RESPONSE = {
    (200, "application/octet-stream"): OpenApiResponse(
        OpenApiTypes.BINARY, description="The label image as stored (PNG, TIFF above 65,535 "
        "cells) or converted with ?format= to any mask format the service writes."),
}


class ImageQaView(ProjectScopedView):
    write_roles = ACTING_ROLES
    @extend_schema(responses={200: OpenApiTypes.OBJECT},
                   description="The image's latest QA run. Annotators get only their own scores, "
                   "flags and violations.")
    def get(self, request, slug, pk):
        project = self.get_project()
        image, run, role = selectors.image_qa_get(user=request.user, project=project, image_id=pk)
        if role == Role.ANNOTATOR:
            return Response(qa_run_own_output(run, user=request.user))
        state = ImageQaState.objects.filter(image=image).select_related("approved_mask__policy").first()
        out = qa_run_output(run, selectors.gate_decision_latest(qa_run=run), state=state)
        reference = out["model_reference"]
        if reference is not None:
            reference["prediction_url"] = None if reference["error"] else reverse(
                "qa:image-model-reference", kwargs={"slug": slug, "pk": pk})
        return Response(out)

    @extend_schema(request=QaRunInput, responses={202: JobOutput},
                   description="Run QA of the image now (QA leads, managers): a job to poll. "
                   "With reference_model (a model version id) the consensus is also compared "
                   "with that model's prediction.")
    def post(self, request, slug, pk):
        image = image_get(user=request.user, project=self.get_project(), image_id=pk)
        data = QaRunInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.qa_run_request(actor=request.user, image=image,
                                      reference_model=data.validated_data.get("reference_model"))
        job.refresh_from_db()
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class _MaskFileView(ProjectScopedView):
    content_negotiation_class = IgnoreFormatQueryNegotiation
    renderer_classes = [JSONRenderer]

    def respond(self, image, name: str, label: str):
        query = AnnotationMaskQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        fmt = query.validated_data.get("format")
        stem = f"{image_file_stem(image)}_{label}"
        if fmt is None:
            return stored_file_response(name, download_name=f"{stem}.{name.rsplit('.', 1)[-1]}")
        return rendered_mask_response(mask_render(
            mask_read(name), format=fmt, stem=stem,
            default_class=image.project.cell_classes[0] if fmt == "coco" and image.project.cell_classes else None,
            image_name=image.original_name or f"{image.sha256}.{image.format}",
        ))


class ImageConsensusView(_MaskFileView):
    @extend_schema(parameters=[AnnotationMaskQuery], responses=FILE_RESPONSE)
    def get(self, request, slug, pk):
        project = self.get_project()
        image, run, role = selectors.image_qa_get(user=request.user, project=project, image_id=pk)
        if role == Role.ANNOTATOR:
            raise NotFound(f"image {pk} has no consensus you may read")
        return self.respond(image, run.consensus.name, f"consensus_run{run.pk}")


class ImageModelReferenceView(_MaskFileView):
    @extend_schema(parameters=[AnnotationMaskQuery], responses=FILE_RESPONSE,
                   description="The reference model's prediction stored with the image's latest QA run "
                   "(`model_reference` of `GET images/<id>/qa/`); 404 when that run was not compared with "
                   "a model or the model could not predict the image.")
    def get(self, request, slug, pk):
        project = self.get_project()
        image, run, role = selectors.image_qa_get(user=request.user, project=project, image_id=pk)
        if role == Role.ANNOTATOR:
            raise NotFound(f"image {pk} has no model reference you may read")
        try:
            reference = run.model_reference
        except QaModelReference.DoesNotExist:
            reference = None
        if reference is None:
            raise NotFound(f"the latest QA run of image {pk} was not compared with a model; set "
                           "reference_model in qa/settings/, or POST images/<id>/qa/ with reference_model",
                           code="no_model_reference")
        if not reference.prediction:
            raise NotFound(f"the reference model could not predict image {pk}: {reference.error}",
                           code="no_model_reference")
        return self.respond(image, reference.prediction.name,
                            f"model{reference.model_version_id}_reference_run{run.pk}")


class ImageApprovedView(_MaskFileView):
    @extend_schema(parameters=[AnnotationMaskQuery], responses=FILE_RESPONSE)
    def get(self, request, slug, pk):
        approved = selectors.approved_mask_get(user=request.user, project=self.get_project(), image_id=pk)
        return self.respond(approved.image, approved.file.name, f"approved{approved.pk}")


class ImageApprovedProvenanceView(ProjectScopedView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, slug, pk):
        approved = selectors.approved_mask_get(user=request.user, project=self.get_project(), image_id=pk)
        return Response(selectors.approved_mask_provenance(approved_mask=approved))


class ImageGoldView(_MaskFileView):
    write_roles = ACTING_ROLES
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(parameters=[AnnotationMaskQuery], responses={200: OpenApiTypes.OBJECT, **FILE_RESPONSE},
                   description="The gold truth as JSON; with ?format= the truth mask file.")
    def get(self, request, slug, pk):
        project = self.get_project()
        image = image_get(user=request.user, project=project, image_id=pk)
        truth = selectors.gold_get(user=request.user, project=project, image=image)
        if "format" in request.query_params:
            return self.respond(image, truth.file.name, f"gold{truth.pk}")
        return Response(gold_output(truth))

    @extend_schema(request={"multipart/form-data": GoldInput}, responses={200: OpenApiTypes.OBJECT})
    def put(self, request, slug, pk):
        project = self.get_project()
        image = image_get(user=request.user, project=project, image_id=pk)
        data = GoldInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        approved = None
        if fields.get("approved_mask"):
            approved = ApprovedMask.objects.filter(pk=fields["approved_mask"], image=image).first()
            if approved is None:
                raise InvalidInput(f"image {pk} has no approved mask {fields['approved_mask']}",
                                   field="approved_mask")
        truth = services.gold_set(actor=request.user, image=image, mask=fields.get("mask"),
                                  approved_mask=approved, comment=fields["comment"])
        return Response(gold_output(truth))
