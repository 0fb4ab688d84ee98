"""Datasets API: snapshots, exports (202 + job), streamed zip downloads, diffs. Thin views."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from annotation.api.base import ProjectScopedView
from datasets import selectors, services
from datasets.api.serializers import (
    ExportCreateInput,
    ExportOutput,
    SnapshotCreateInput,
    SnapshotFilter,
    SnapshotOutput,
    SnapshotUpdateInput,
)
from datasets.formats.datasheet import datasheet_markdown
from datasets.formats.zipstream import stream_zip


class SnapshotListView(ProjectScopedView):
    serializer_class = SnapshotOutput
    filter_serializer_class = SnapshotFilter

    @extend_schema(parameters=[SnapshotFilter], responses=SnapshotOutput(many=True))
    def get(self, request, slug):
        qs = selectors.snapshot_list(user=request.user, project=self.get_project(), filters=self.get_filters())
        return self.paginated(qs, SnapshotOutput)

    @extend_schema(request=SnapshotCreateInput, responses={201: SnapshotOutput, 200: SnapshotOutput},
                   description="Freeze the approved masks matching the selection as the next version "
                   "of `name`. 200 with the latest version when nothing changed since it.")
    def post(self, request, slug):
        data = SnapshotCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        fractions = fields.pop("fractions", None)
        if fractions is not None:
            fields["fractions"] = (fractions["train"], fractions["val"], fractions["test"])
        result = services.snapshot_create(
            actor=request.user, project=self.get_project(), spec=services.SnapshotSpec(**fields)
        )
        return Response(SnapshotOutput(result.snapshot).data,
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class SnapshotDetailView(ProjectScopedView):
    serializer_class = SnapshotOutput

    def _get(self, request, pk):
        return selectors.snapshot_get(user=request.user, project=self.get_project(), snapshot_id=pk)

    @extend_schema(responses=OpenApiTypes.OBJECT,
                   description="The snapshot with its items, splits, manifest and datasheet.")
    def get(self, request, slug, pk):
        snapshot = self._get(request, pk)
        manifest = selectors.snapshot_manifest(snapshot)
        sheet = selectors.snapshot_datasheet(snapshot)
        items = [
            {"image": r["image"]["id"], "name": r["name"], "image_sha256": r["image"]["sha256"],
             "approved_mask": r["mask"]["approved_mask"], "mask_sha256": r["mask"]["sha256"],
             "split": r["split"], "group": r["group"], "n_cells": r["mask"]["n_cells"],
             "ignore_cells": r["ignore_cells"]}
            for r in manifest["items"]
        ]
        body = SnapshotOutput(snapshot).data
        body.update(items=items, splits={"counts": snapshot.split_counts, "leak_check": snapshot.leak_check,
                                         "options": snapshot.split_options},
                    manifest=manifest, datasheet=sheet, datasheet_markdown=datasheet_markdown(sheet))
        return Response(body)

    @extend_schema(request=SnapshotUpdateInput, responses=SnapshotOutput,
                   description="Fill in the licence and citation (managers). The content never changes.")
    def patch(self, request, slug, pk):
        snapshot = self._get(request, pk)
        data = SnapshotUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = services.snapshot_update(actor=request.user, snapshot=snapshot, **data.validated_data)
        return Response(SnapshotOutput(snapshot).data)


class SnapshotDiffView(ProjectScopedView):
    serializer_class = SnapshotOutput

    @extend_schema(responses=OpenApiTypes.OBJECT,
                   description="Images and masks added, removed and changed from a to b, with reasons.")
    def get(self, request, slug, a, b):
        return Response(selectors.snapshot_diff(user=request.user, project=self.get_project(), a_id=a, b_id=b))


class ExportListView(ProjectScopedView):
    serializer_class = ExportOutput

    def _snapshot(self, request, pk):
        return selectors.snapshot_get(user=request.user, project=self.get_project(), snapshot_id=pk)

    @extend_schema(responses=ExportOutput(many=True))
    def get(self, request, slug, pk):
        return self.paginated(selectors.export_list(user=request.user, snapshot=self._snapshot(request, pk)),
                              ExportOutput)

    @extend_schema(request=ExportCreateInput, responses={202: ExportOutput},
                   description="Write the snapshot in a training format as a job; poll the export.")
    def post(self, request, slug, pk):
        data = ExportCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        export = services.export_request(actor=request.user, snapshot=self._snapshot(request, pk),
                                         **data.validated_data)
        export.refresh_from_db()
        return Response(ExportOutput(export).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailView(ProjectScopedView):
    serializer_class = ExportOutput

    @extend_schema(responses=ExportOutput)
    def get(self, request, slug, pk, export_id):
        snapshot = selectors.snapshot_get(user=request.user, project=self.get_project(), snapshot_id=pk)
        return Response(ExportOutput(selectors.export_get(user=request.user, snapshot=snapshot,
                                                          export_id=export_id)).data)


class ExportDownloadView(ProjectScopedView):
    serializer_class = ExportOutput

    @extend_schema(responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, slug, pk, export_id):
        snapshot = selectors.snapshot_get(user=request.user, project=self.get_project(), snapshot_id=pk)
        export = selectors.export_get(user=request.user, snapshot=snapshot, export_id=export_id)
        entries = selectors.export_zip_entries(export)
        name = selectors.export_archive_name(export)
        response = StreamingHttpResponse(stream_zip(entries, root=name), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{name}.zip"'
        return response
