"""Tables of the QA workflow: runs, gating policies and decisions, reviews, approved masks,
gold truth, annotator reliability, qualification and the audit trail.

Two kinds of rows live here (see ``docs/qa-workflow.md``):

- **events**, immutable once written: :class:`QaRun` (+ :class:`QaRunAnnotation`),
  :class:`GateDecision`, :class:`ReviewDecision`, :class:`ApprovedMask`,
  :class:`GoldTruth`, :class:`AnnotatorReliabilityPoint`, :class:`AuditEvent`,
  :class:`QaModelReference`. Their ``save()`` refuses an update and a database trigger
  (migrations ``0002`` and ``0003``) refuses an UPDATE from any code path; new evidence
  makes new rows.
- **current state**, derived from the events and rewritten by the services:
  :class:`ImageQaState` (where each image stands, for the review queue and datasets),
  :class:`AnnotatorReliability` (sufficient statistics per annotator),
  :class:`Qualification`, :class:`QaSettings`. A published :class:`GatingPolicy` never
  changes either; only its status moves published -> retired.

One module per concept; every model is re-exported here, so ``from qa.models import X``
is the way to import them.
"""

from qa.models.audit import AuditEvent
from qa.models.base import ImmutableError, ImmutableModel
from qa.models.policies import GatingPolicy
from qa.models.qualification import GoldTruth, GuidelineRequalification, Qualification
from qa.models.reference import QaModelReference, QaSettings
from qa.models.reliability import TIME_BIN_EDGES, AnnotatorReliability, AnnotatorReliabilityPoint
from qa.models.review import ApprovedMask, GateDecision, ReviewDecision
from qa.models.runs import QaRun, QaRunAnnotation
from qa.models.state import ImageQaState

__all__ = [
    "AnnotatorReliability",
    "AnnotatorReliabilityPoint",
    "ApprovedMask",
    "AuditEvent",
    "GateDecision",
    "GatingPolicy",
    "GoldTruth",
    "GuidelineRequalification",
    "ImageQaState",
    "ImmutableError",
    "ImmutableModel",
    "QaModelReference",
    "QaRun",
    "QaRunAnnotation",
    "QaSettings",
    "Qualification",
    "ReviewDecision",
    "TIME_BIN_EDGES",
]
