"""Training API: runs (202, poll), cancel, the model registry and comparisons. Thin views."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from annotation.access import check_project_role
from annotation.api.base import ProjectScopedView
from annotation.enums import Role
from annotation.serializers import JobOutput
from training import selectors, services
from training.api.serializers import (
    AssistInput,
    ModelFilter,
    ModelOutput,
    PredictInput,
    QueueInput,
    RankingQuery,
    RankingStartInput,
    RunCreateInput,
    RunFilter,
    RunOutput,
)
from training.services import active_learning as al
from training.services.assist import assist_segment
from training.services.bioimageio import model_bioimageio_package, package_id
from training.services.data import training_storage
from training.services.preannotate import preannotate_start
from training.services.registry import WRITE_ROLES


class RunListView(ProjectScopedView):
    write_roles = WRITE_ROLES
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
    write_roles = WRITE_ROLES
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


class ModelPredictView(ProjectScopedView):
    write_roles = WRITE_ROLES
    serializer_class = PredictInput

    @extend_schema(request=PredictInput, responses={202: JobOutput},
                   description="Pre-annotate images with the model (ML engineers, managers): each open "
                   "assignment of them gets a `model_assisted` draft. A job; poll `jobs/<id>/`.")
    def post(self, request, slug, pk):
        project = self.get_project()
        model = selectors.model_get(user=request.user, project=project, model_id=pk)
        data = PredictInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        job = preannotate_start(actor=request.user, project=project, model=model, image_ids=v.get("images"),
                                filters=v.get("filter"))
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ActiveLearningView(ProjectScopedView):
    write_roles = al.READ_ROLES
    serializer_class = RankingStartInput

    @extend_schema(parameters=[RankingQuery],
                   responses={200: OpenApiTypes.OBJECT,
                              404: OpenApiResponse(description="No ranking by this model has been computed yet.")},
                   description="The latest ranking by a model: `unlabelled` images by its uncertainty, "
                   "`labelled` ones by its disagreement with the QA consensus, highest score first, with the "
                   "`job` that computed it. Reads only: 404 when none has been computed yet "
                   "(`POST active-learning/` computes one).")
    def get(self, request, slug):
        project = self.get_project()
        # Who may not read rankings hears so before anything about their query.
        check_project_role(user=request.user, project=project, roles=al.READ_ROLES)
        query = RankingQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        model = selectors.model_get(user=request.user, project=project, model_id=query.validated_data["model"])
        job = al.ranking_get(user=request.user, project=project, model=model)
        return Response({**al.ranking_named(project=project, ranking=job.result), "job": job.pk})

    @extend_schema(request=RankingStartInput, responses={202: JobOutput},
                   description="Compute a new ranking by a model: 202 with the job to poll "
                   "(`GET jobs/<id>/`), then `GET active-learning/?model=` serves it. While a ranking by "
                   "that model is being computed, that job is answered instead of a second one.")
    def post(self, request, slug):
        project = self.get_project()
        data = RankingStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        model = selectors.model_get(user=request.user, project=project, model_id=data.validated_data["model"])
        job, _created = al.ranking_start(actor=request.user, project=project, model=model)
        job.refresh_from_db()  # an embedded (eager) run has already moved it on
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ActiveLearningQueueView(ProjectScopedView):
    write_roles = (Role.MANAGER,)
    serializer_class = QueueInput

    @extend_schema(request=QueueInput, responses=OpenApiTypes.OBJECT,
                   description="Managers: hand these images out first (assignment priority "
                   f"{al.QUEUE_PRIORITY}), adding assignments where none is open.")
    def post(self, request, slug):
        project = self.get_project()
        data = QueueInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if "images" in v:
            return Response(al.queue_for_annotation(actor=request.user, project=project, image_ids=v["images"]))
        model = selectors.model_get(user=request.user, project=project, model_id=v["model"])
        return Response(al.queue_top(actor=request.user, project=project, model=model, top=v["top"],
                                     kind=v["kind"]))


class ModelBioimageioView(ProjectScopedView):
    serializer_class = ModelOutput

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY},
                   description="The model as a bioimage.io model package (bioimageio.spec 0.5 rdf.yaml, "
                   "TorchScript weights, test input/output, cover, docs); Cellpose models only.")
    def get(self, request, slug, pk):
        project = self.get_project()
        model = selectors.model_get(user=request.user, project=project, model_id=pk)
        name = model_bioimageio_package(user=request.user, project=project, model=model)
        filename = package_id(model).replace("/", "_") + ".bioimageio.zip"
        return FileResponse(training_storage().open(name, "rb"), as_attachment=True, filename=filename,
                            content_type="application/zip")
