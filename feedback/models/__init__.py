"""All tables, imported together so Alembic sees one metadata."""

from sqlmodel import SQLModel

from feedback.models.answers import Answer, ReleaseBatch
from feedback.models.idempotency import IdempotencyKey
from feedback.models.live import LiveEvent
from feedback.models.mail import OutboxMail
from feedback.models.people import LoginSession, Person, Role
from feedback.models.requests import (
    FeedbackRequest,
    Invitation,
    InvitationStatus,
    RequestStatus,
    RequestTag,
)

metadata = SQLModel.metadata

__all__ = [
    "Answer",
    "FeedbackRequest",
    "IdempotencyKey",
    "Invitation",
    "InvitationStatus",
    "LiveEvent",
    "LoginSession",
    "OutboxMail",
    "Person",
    "ReleaseBatch",
    "RequestStatus",
    "RequestTag",
    "Role",
    "metadata",
]
