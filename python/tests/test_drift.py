"""The package's routes and wire types against the server's /openapi.json, both ways."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import httpx
import pytest

from athanor import models
from athanor.routes import ROUTES, Route


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    response = httpx.get(f"{os.environ['ATHANOR_URL'].rstrip('/')}/openapi.json", timeout=30)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def user_operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, operations in document["paths"].items()
        if path.startswith("/v1/")
        for method, operation in operations.items()
    }


def properties(schema: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """An object schema's properties (through arrays, allOf, and anyOf with null); None if free-form."""
    if not schema:
        return None
    if schema.get("type") == "array":
        return properties(schema.get("items"))
    if "allOf" in schema:
        merged: dict[str, dict[str, Any]] = {}
        for part in schema["allOf"]:
            merged.update(properties(part) or {})
        return merged
    if "anyOf" in schema:
        objects = [properties(part) for part in schema["anyOf"] if part.get("type") != "null"]
        found = [o for o in objects if o is not None]
        return found[0] if found else None
    return schema.get("properties")


def answer_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    ok = operation["responses"].get("200", {})
    return ok.get("content", {}).get("application/json", {}).get("schema")


def model_mismatches(model: type[models.Model], props: dict[str, Any], where: str) -> list[str]:
    fields = {f.name for f in dataclasses.fields(model)}  # type: ignore[arg-type]
    wire = {
        (name if model.snake_wire else models.field_name(name)): schema for name, schema in props.items()
    }
    problems = [f"{where}: the server has field {n!r} that {model.__name__} lacks" for n in wire.keys() - fields]
    problems += [f"{where}: {model.__name__} has field {n!r} the server lacks" for n in fields - wire.keys()]
    for name, inner in model.nested.items():
        if name in wire:
            inner_props = properties(wire[name])
            if inner_props is None:
                problems.append(f"{where}.{name}: the server no longer describes an object here")
            else:
                problems += model_mismatches(inner, inner_props, f"{where}.{name}")
    return problems


def test_every_user_route_of_the_server_is_in_the_package_and_no_other(document: dict[str, Any]) -> None:
    server = set(user_operations(document))
    package = {(r.method, r.path) for r in ROUTES.values()}
    assert sorted(server - package) == [], "routes the server has and the package lacks"
    assert sorted(package - server) == [], "routes the package calls and the server lacks"


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_query_body_and_answer_fields_match(document: dict[str, Any], name: str) -> None:
    route: Route = ROUTES[name]
    operation = user_operations(document).get((route.method, route.path))
    if operation is None:
        pytest.fail(f"{route.method} {route.path} is not in the server's document")
    query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    assert query == set(route.query), f"{name}: query parameters"
    path_params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
    assert path_params == {seg[1:-1] for seg in route.path.split("/") if seg.startswith("{")}
    body_schema = (
        operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    assert set((properties(body_schema) or {})) == set(route.body), f"{name}: body fields"
    schema = answer_schema(operation)
    if route.answer is None:
        assert properties(schema) is None, f"{name}: the server now describes its answer's fields"
        return
    assert schema is not None, f"{name}: the server describes no answer"
    assert (schema.get("type") == "array") == route.many, f"{name}: one object or a list"
    props = properties(schema)
    assert props is not None, f"{name}: the server's answer has no fields"
    assert model_mismatches(route.answer, props, name) == []
