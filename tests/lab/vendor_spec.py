"""The vendor's OpenAPI spec as the lab's tests check against it: answers (the path's declared
200 schema) and request bodies (its declared requestBody schema).

Validation is stricter than the spec itself: types are checked with Draft 4 semantics (so ``1.0``
is not an integer, as a Java client would also refuse it), and every object schema is closed
(``additionalProperties: false``) so the simulator cannot invent fields a real platform lacks,
nor a client send fields the platform does not declare.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_PATH = (Path(__file__).resolve().parents[2].parent / "shared" / "vendor"
             / "ocloudview-9.0-openapi.json")
SPEC_URI = "urn:ocloudview-9.0"


# --------------------------------------------------------------------------- the spec


def _close_objects(schema: Any) -> None:
    """Set ``additionalProperties: false`` on every object schema that lists its properties."""
    if not isinstance(schema, dict):
        return
    if isinstance(schema.get("properties"), dict):
        schema.setdefault("additionalProperties", False)
        for sub in schema["properties"].values():
            _close_objects(sub)
    for key in ("items", "additionalProperties"):
        _close_objects(schema.get(key))


class Spec:
    """The vendor spec, with validators for the answers its paths declare."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        strict = copy.deepcopy(doc)
        for schema in strict["components"]["schemas"].values():
            _close_objects(schema)
        # The refs are "#/components/schemas/ResponseVO«DomainVO»" with raw «»: referencing
        # unquotes the fragment, which leaves non-ASCII text as it is, so they resolve unencoded.
        resource = Resource.from_contents(strict, default_specification=DRAFT4)
        self.registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self._validators: dict[str, Draft4Validator] = {}

    def response_schema(self, method: str, template: str) -> str:
        """The schema name the spec declares for the 200 answer of ``method template``."""
        op = self.doc["paths"][template][method.lower()]
        ref = op["responses"]["200"]["content"]["*/*"]["schema"]["$ref"]
        return str(ref.rsplit("/", 1)[1])

    def request_schema(self, method: str, template: str) -> str | None:
        """The schema name the spec declares for the request body of ``method template``
        (None: the path takes no body)."""
        op = self.doc["paths"][template][method.lower()]
        body = op.get("requestBody")
        if body is None:
            return None
        return str(body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1])

    def validator(self, name: str) -> Draft4Validator:
        if name not in self._validators:
            assert name in self.doc["components"]["schemas"], name
            ref = {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}
            self._validators[name] = Draft4Validator(ref, registry=self.registry)
        return self._validators[name]

    def errors(self, name: str, instance: Any) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in self.validator(name).iter_errors(instance)]

    def properties(self, name: str) -> set[str]:
        return set(self.doc["components"]["schemas"][name]["properties"])


@cache
def load_spec() -> Spec | None:
    """The spec at :data:`SPEC_PATH`, or None when it is not there."""
    if not SPEC_PATH.is_file():
        return None
    return Spec(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


def check(spec: Spec, resp: httpx.Response, method: str, template: str, *,
          http: int = 200, ok: bool = True) -> dict[str, Any]:
    """Assert the answer is JSON valid for the path's declared schema; return the body."""
    assert resp.status_code == http, resp.text
    body = resp.json()
    problems = spec.errors(spec.response_schema(method, template), body)
    assert not problems, f"{method} {template}: {problems}\n{resp.text[:500]}"
    assert isinstance(body["status"], int) and isinstance(body["msg"], str) and body["msg"]
    if ok:
        assert body["status"] == 0, body
    else:
        assert body["status"] != 0, body
        assert "data" not in body
    return body


def assert_declared(spec: Spec, name: str, record: dict[str, Any]) -> None:
    extra = set(record) - spec.properties(name)
    assert not extra, f"{name} has fields the spec does not declare: {sorted(extra)}"


def check_request(spec: Spec, method: str, template: str, body: Any) -> list[str]:
    """What is wrong with ``body`` as the request body of ``method template`` (``[]``: it is
    valid). A path that declares no body takes none (None)."""
    name = spec.request_schema(method, template)
    if name is None:
        return [] if body is None else [f"{method} {template} declares no request body"]
    return [] if body is None else spec.errors(name, body)
