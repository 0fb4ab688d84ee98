"""Training API: runs (202, poll), cancel, the model registry and comparisons. Thin views."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from annotation.api.base import ProjectScopedView
from training import selectors, services
from training.api.serializers import (
    AssistInput,
    ModelFilter,
    ModelOutput,
    RunCreateInput,
    RunFilter,
    RunOutput,
)
from training.services.assist import assist_segment


class RunListView(ProjectScopedView):
    serializer_class = RunOutput
    filter_serializer_class = RunFilter

    @extend_schema(parameters=[RunFilter], responses=RunOutput(many=True))
    def get(self, request, slug):
        qs = selectors.run_list(user=request.user, project=self.get_project(), filters=self.get_filters())
        return self.paginated(qs, RunOutput)

    @extend_schema(request=RunCreateInput, responses={202: RunOutput},
                   description="Queue a fine-tune of a snapshot (ML engineers, managers); poll the run.")
    def post(self, request, slug):
        data = RunCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        spec = services.RunSpec(
            name=v["name"], snapshot_id=v["snapshot"], backbone=v["backbone"], base_model_id=v["base_model"],
            base_weights=v["base_weights"], hyperparameters=v["hyperparameters"], options=v["options"],
            train_split=v["train_split"], val_split=v["val_split"], test_split=v["test_split"])
        run = services.run_create(actor=request.user, project=self.get_project(), spec=spec)
        run.refresh_from_db()
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class RunDetailView(ProjectScopedView):
    serializer_class = RunOutput

    @extend_schema(responses=RunOutput)
    def get(self, request, slug, pk):
        return Response(RunOutput(selectors.run_get(user=request.user, project=self.get_project(),
                                                    run_id=pk)).data)


class RunCancelView(ProjectScopedView):
    serializer_class = RunOutput

    @extend_schema(request=None, responses={202: RunOutput},
                   description="Stop a run: a queued one at once, a running one after its epoch.")
    def post(self, request, slug, pk):
        run = selectors.run_get(user=request.user, project=self.get_project(), run_id=pk)
        run = services.run_cancel(actor=request.user, run=run)
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class ModelListView(ProjectScopedView):
    serializer_class = ModelOutput
    filter_serializer_class = ModelFilter

    @extend_schema(parameters=[ModelFilter], responses=ModelOutput(many=True))
    def get(self, request, slug):
        qs = selectors.model_list(user=request.user, project=self.get_project(), filters=self.get_filters())
        return self.paginated(qs, ModelOutput)


class ModelDetailView(ProjectScopedView):
    serializer_class = ModelOutput

    @extend_schema(responses=ModelOutput)
    def get(self, request, slug, pk):
        return Response(ModelOutput(selectors.model_get(user=request.user, project=self.get_project(),
                                                        model_id=pk)).data)


class ModelCompareView(ProjectScopedView):
    serializer_class = ModelOutput

    @extend_schema(responses=OpenApiTypes.OBJECT,
                   description="Two model versions side by side: lineage, metrics, difference (b - a).")
    def get(self, request, slug, a, b):
        project = self.get_project()
        ma = selectors.model_get(user=request.user, project=project, model_id=a)
        mb = selectors.model_get(user=request.user, project=project, model_id=b)
        return Response(services.model_compare(user=request.user, project=project, a=ma, b=mb))


class AssistView(ProjectScopedView):
    serializer_class = AssistInput

    @extend_schema(request=AssistInput, responses=OpenApiTypes.OBJECT,
                   description="One cell's mask for a box or points: SAM when configured (embedding cached "
                   "per image and model), else a classical threshold + watershed inside the box. `method` "
                   "says which answered; the mask is row-major run lengths starting with background.")
    def post(self, request, slug, pk):
        data = AssistInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        outcome = assist_segment(actor=request.user, project=self.get_project(), image_id=pk, box=v["box"],
                                 points=v["points"], point_labels=v["point_labels"], channel=v["channel"],
                                 model_id=v["model"])
        return Response(outcome.as_dict())
