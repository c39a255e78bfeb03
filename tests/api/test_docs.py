"""Docs that tests keep honest (after Datasette): a setting, path, event type or error code
added to the code without reaching the docs fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from feedback import errors
from feedback.api.openapi import openapi_document
from feedback.live.events import EVENT_TYPES
from feedback.settings import Settings
from tests.api.documented import Documented

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_feedback_setting_is_documented_in_deploy_md() -> None:
    """THE SETTINGS TEST: every FEEDBACK_* setting needs a row in docs/deploy.md's table."""
    deploy = (DOCS / "deploy.md").read_text()
    documented = set(re.findall(r"^\| `(FEEDBACK_[A-Z0-9_]+)` \|", deploy, flags=re.MULTILINE))
    settings = {"FEEDBACK_" + name.upper() for name in Settings.model_fields}
    assert settings - documented == set(), "add these to the settings table in docs/deploy.md"
    assert documented - settings == set(), "docs/deploy.md documents settings that do not exist"


def test_api_md_describes_every_documented_path() -> None:
    api = (DOCS / "api.md").read_text()
    missing = [
        path
        for path in openapi_document()["paths"]
        # The path itself, not merely the start of a longer one.
        if not re.search(re.escape(path) + r"(?![\w/{}.-])", api)
    ]
    assert missing == []


def test_api_md_describes_every_live_event_type_with_an_example() -> None:
    api = (DOCS / "api.md").read_text()
    for event_type in sorted(EVENT_TYPES):
        assert f'"type": "{event_type}"' in api, f"no example message for {event_type}"
        assert f"| `{event_type}` |" in api, f"{event_type} missing from the event table"


def test_api_md_lists_every_error_code() -> None:
    api = (DOCS / "api.md").read_text()
    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.FeedbackError)
    }
    codes -= {errors.FeedbackError.code}  # the base class; every raise uses a subclass
    codes |= {"method_not_allowed", "server_error"}  # from feedback/web.py's handlers
    for code in sorted(codes):
        assert re.search(rf"\| \d{{3}} \| `{code}` \|", api), f"error code {code} not in the table"


def json_examples(text: str) -> list[Any]:
    """Every ```json block of a page that is a whole JSON document (fragments are skipped)."""
    examples = []
    for block in re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL):
        try:
            examples.append(json.loads(block))
        except ValueError:
            continue
    return examples


def test_api_md_examples_match_the_openapi_document() -> None:
    api = Documented(openapi_document())
    examples = json_examples((DOCS / "api.md").read_text())
    messages = [e for e in examples if isinstance(e, dict) and "type" in e]
    assert {m["type"] for m in messages} == EVENT_TYPES | {"resync"}
    for message in messages:
        api.validate(message, api.component("LiveMessage"))
    failures = [e for e in examples if isinstance(e, dict) and "error" in e]
    assert len(failures) >= 3
    for failure in failures:
        api.validate(failure, api.component("Error"))
    details = [e for e in examples if isinstance(e, dict) and "invitees" in e]
    assert {d["anonymous"] for d in details} == {True, False}
    for detail in details:
        api.validate(detail, api.component("RequestDetail"))
