"""Checking real responses against the OpenAPI document, more strictly than it says.

The check forbids any property a documented object does not list, so a field added to a
view without reaching the document is caught.
"""

from __future__ import annotations

from typing import Any

import httpx2
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def forbid_undocumented_properties(node: Any) -> Any:
    """A copy of a schema in which no object may carry a property it does not list."""
    if isinstance(node, list):
        return [forbid_undocumented_properties(item) for item in node]
    if not isinstance(node, dict):
        return node
    copied = {key: forbid_undocumented_properties(value) for key, value in node.items()}
    if "properties" in copied and "additionalProperties" not in copied:
        copied["additionalProperties"] = False
    return copied


class Documented:
    """Looks up what the document promises for a call and checks a real response against it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        strict = {**document, "components": forbid_undocumented_properties(document["components"])}
        resource = Resource.from_contents(strict, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource("urn:feedback:openapi", resource)

    def schema_for(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        operation = self.document["paths"][path][method.lower()]
        documented = operation["responses"]
        assert str(status) in documented, (
            f"{method} {path} answered {status}, which the document does not list "
            f"(it lists {sorted(documented)})"
        )
        response = documented[str(status)]
        if "$ref" in response:
            response = self.document["components"]["responses"][response["$ref"].split("/")[-1]]
        content = response.get("content")
        if content is None:
            return None
        (media_type, body) = next(iter(content.items()))
        return {"media_type": media_type, "schema": body["schema"]}

    def check(self, response: httpx2.Response, path: str) -> Any:
        """Validate a real response against the document; returns its parsed body."""
        method = response.request.method
        expected = self.schema_for(method, path, response.status_code)
        if expected is None:
            assert response.content == b"", f"{method} {path}: documented as having no body"
            return None
        content_type = response.headers["content-type"].split(";")[0]
        assert content_type == expected["media_type"], f"{method} {path}: {content_type}"
        body = response.json() if content_type == "application/json" else response.text
        self.validate(body, expected["schema"])
        return body

    def validate(self, instance: Any, schema: dict[str, Any]) -> None:
        if "$ref" in schema:
            # The document's refs are local ("#/components/..."): resolve them in the document.
            schema = {"$ref": "urn:feedback:openapi" + schema["$ref"]}
        validator = jsonschema.Draft202012Validator(
            schema, registry=self.registry, format_checker=jsonschema.FormatChecker()
        )
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, (
            "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
            + f"\nin {instance!r}"
        )

    def component(self, name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}
