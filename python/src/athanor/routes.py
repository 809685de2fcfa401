"""Every route of the user API the client calls: method, path, query and body fields, answer.

:class:`athanor.Client` sends requests only through this table, and refuses a query or body
field a route does not declare, so the table is exactly what the package speaks. The drift
test compares it with a running server's ``/openapi.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import models as m


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    query: frozenset[str] = frozenset()
    body: frozenset[str] = frozenset()
    #: The model of the answer (a list of it when ``many``); None: free-form JSON or raw bytes.
    answer: type[m.Model] | None = None
    many: bool = False
    #: The answer is a byte stream, not JSON.
    raw: bool = False


def _r(
    method: str,
    path: str,
    query: tuple[str, ...] = (),
    body: tuple[str, ...] = (),
    answer: type[m.Model] | None = None,
    many: bool = False,
    raw: bool = False,
) -> Route:
    return Route(method, path, frozenset(query), frozenset(body), answer, many, raw)


_page = ("limit", "after")

ROUTES: dict[str, Route] = {
    "token": _r("POST", "/v1/token", body=("username", "password"), answer=m.Token),
    "whoami": _r("GET", "/v1/whoami"),
    "submit_network": _r(
        "POST",
        "/v1/networks",
        body=("scope", "name", "transformations", "state"),
        answer=m.Submitted,
    ),
    "list_networks": _r(
        "GET", "/v1/networks", query=(*_page, "scope", "state", "name"), answer=m.Network, many=True
    ),
    "get_network": _r("GET", "/v1/networks/{key}", answer=m.Network),
    "network_transformations": _r(
        "GET", "/v1/networks/{key}/transformations", query=_page, answer=m.Transformation, many=True
    ),
    "network_tasks": _r("GET", "/v1/networks/{key}/tasks", query=_page, answer=m.HubTask, many=True),
    "network_status": _r("GET", "/v1/networks/{key}/status"),
    "set_network_weight": _r("PUT", "/v1/networks/{key}/weight", body=("weight",), answer=m.Network),
    "set_network_state": _r(
        "POST",
        "/v1/networks/state",
        body=("networks", "state"),
        answer=m.NetworkStateAnswer,
        many=True,
    ),
    "action_tasks": _r(
        "POST", "/v1/networks/{key}/actions", body=("tasks", "weight"), answer=m.BulkAnswer, many=True
    ),
    "cancel_tasks": _r(
        "POST", "/v1/networks/{key}/cancellations", body=("tasks",), answer=m.BulkAnswer, many=True
    ),
    "restart_policies": _r(
        "GET", "/v1/networks/{key}/restart-policies", answer=m.RestartPolicy, many=True
    ),
    "add_restart_policies": _r(
        "POST",
        "/v1/networks/{key}/restart-policies",
        body=("policies",),
        answer=m.RestartPolicy,
        many=True,
    ),
    "remove_restart_policies": _r(
        "POST",
        "/v1/networks/{key}/restart-policies/removals",
        body=("patterns",),
        answer=m.RestartPolicy,
        many=True,
    ),
    "list_transformations": _r(
        "GET",
        "/v1/transformations",
        query=(*_page, "scope", "name", "protocol"),
        answer=m.Transformation,
        many=True,
    ),
    "get_transformation": _r("GET", "/v1/transformations/{key}", answer=m.Transformation),
    "create_tasks": _r(
        "POST",
        "/v1/transformations/{key}/tasks",
        body=("count", "extends", "priority"),
        answer=m.Task,
        many=True,
    ),
    "list_tasks": _r(
        "GET",
        "/v1/tasks",
        query=(*_page, "scope", "status", "transformation", "network"),
        answer=m.Task,
        many=True,
    ),
    "get_task": _r("GET", "/v1/tasks/{id}", answer=m.Task),
    "set_task_status": _r(
        "POST", "/v1/tasks/status", body=("tasks", "status", "reason"), answer=m.StatusChange
    ),
    "task_details": _r("POST", "/v1/tasks/details", body=("tasks",), answer=m.TaskHistory, many=True),
    "task_attempts": _r("GET", "/v1/tasks/{id}/attempts", answer=m.Attempt, many=True),
    "network_failures": _r(
        "GET", "/v1/networks/{key}/failures", query=_page, answer=m.Failure, many=True
    ),
    "network_results": _r(
        "GET",
        "/v1/networks/{key}/results",
        query=(*_page, "outcome"),
        answer=m.NetworkResult,
        many=True,
    ),
    "failures": _r("GET", "/v1/failures", query=(*_page, "scope"), answer=m.Failure, many=True),
    "set_task_priority": _r(
        "POST", "/v1/tasks/priority", body=("tasks", "priority"), answer=m.BulkAnswer, many=True
    ),
    "task_results": _r("GET", "/v1/tasks/{id}/results", answer=m.Result, many=True),
    "get_result": _r("GET", "/v1/results/{id}", answer=m.Result),
    "download_result": _r("GET", "/v1/results/{id}/download", raw=True),
    "scope_status": _r("GET", "/v1/status", query=("scope",)),
    "attempt_log": _r("GET", "/v1/tasks/{id}/attempts/{n}/log", query=("offset",), raw=True),
    "events": _r("GET", "/v1/events", query=("after", "scope", "type", "network", "limit")),
    "add_webhook": _r("POST", "/v1/webhooks", body=("url", "scope", "events")),
    "list_webhooks": _r("GET", "/v1/webhooks"),
    "get_webhook": _r("GET", "/v1/webhooks/{id}", query=("deliveries",)),
    "remove_webhook": _r("DELETE", "/v1/webhooks/{id}"),
    "test_webhook": _r("POST", "/v1/webhooks/{id}/test"),
    "enable_webhook": _r("POST", "/v1/webhooks/{id}/enable"),
    "list_strategies": _r("GET", "/v1/strategies"),
    "set_strategy": _r("PUT", "/v1/networks/{key}/strategy", body=("name", "params")),
    "get_strategy": _r("GET", "/v1/networks/{key}/strategy"),
    "remove_strategy": _r("DELETE", "/v1/networks/{key}/strategy"),
    "preview_strategy": _r("GET", "/v1/networks/{key}/strategy/preview"),
    "ensure_tasks": _r(
        "POST",
        "/v1/transformations/{key}/tasks/ensure",
        body=("count", "network", "priority", "weight"),
    ),
}
