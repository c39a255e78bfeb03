"""What the API accepts and returns about people."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from feedback.models.people import Role


class PersonPublic(BaseModel):
    """A person as `GET /api/v1/me` returns them."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    role: Role
    manager_id: uuid.UUID | None


class DirectoryEntry(BaseModel):
    """A colleague offered by the reviewer autocomplete."""

    model_config = ConfigDict(from_attributes=True)

    email: str
    name: str
