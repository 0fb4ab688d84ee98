"""``/api/v1/`` routes of the QA workflow."""

from django.urls import path

from qa.api import images, policies, project, review

app_name = "qa"

P = "projects/<slug:slug>/"
I = P + "images/<int:pk>/"  # noqa: E741

urlpatterns = [
    path(I + "qa/", images.ImageQaView.as_view(), name="image-qa"),
    path(I + "qa/consensus/", images.ImageConsensusView.as_view(), name="image-consensus"),
    path(I + "qa/model-reference/", images.ImageModelReferenceView.as_view(), name="image-model-reference"),
    path(I + "approved/", images.ImageApprovedView.as_view(), name="image-approved"),
    path(I + "approved/provenance/", images.ImageApprovedProvenanceView.as_view(), name="image-approved-provenance"),
    path(I + "gold/", images.ImageGoldView.as_view(), name="image-gold"),
    path(I + "review/", review.ImageReviewView.as_view(), name="image-review"),
    path(P + "review-queue/", review.ReviewQueueView.as_view(), name="review-queue"),
    path(P + "qa/agreement/", project.AgreementView.as_view(), name="agreement"),
    path(P + "qa/annotators/", project.AnnotatorsView.as_view(), name="annotators"),
    path(P + "qa/annotators/recompute/", project.ReliabilityRecomputeView.as_view(), name="annotators-recompute"),
    path(P + "qa/rerun/", project.QaRerunView.as_view(), name="qa-rerun"),
    path(P + "qa/qualification/", project.QualificationView.as_view(), name="qualification"),
    path(P + "qa/qualification/requalify/", project.RequalificationView.as_view(), name="requalify"),
    path(P + "qa/settings/", project.QaSettingsView.as_view(), name="settings"),
    path(P + "gating-policies/", policies.PolicyListView.as_view(), name="policy-list"),
    path(P + "gating-policies/<int:version>/", policies.PolicyDetailView.as_view(), name="policy-detail"),
    path(P + "gating-policies/<int:version>/publish/", policies.PolicyPublishView.as_view(), name="policy-publish"),
    path(P + "audit/", project.AuditView.as_view(), name="audit"),
]
