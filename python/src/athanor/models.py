"""The user API's wire types, as frozen dataclasses with snake_case fields.

Each class mirrors one object of the server's ``/openapi.json``: a field ``created_at`` is the
wire's ``createdAt``. The package's drift test compares every class here (and the routes in
:mod:`athanor.routes`) with a running server's document and fails when either side has a field
or a route the other lacks. Fields the server adds later are ignored when reading, so an older
client keeps working against a newer server. Times are ISO 8601 strings, as on the wire.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

TaskStatus = Literal["waiting", "running", "complete", "error", "invalid", "deleted"]
NetworkState = Literal["active", "inactive", "invalid", "deleted"]
ResultOutcome = Literal["ok", "failed"]
AttemptOutcome = Literal["ok", "failed", "released", "expired", "revoked"]

M = TypeVar("M", bound="Model")


def wire_name(field_name: str) -> str:
    """``created_at`` → ``createdAt``."""
    head, *rest = field_name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def field_name(wire: str) -> str:
    """``createdAt`` → ``created_at``."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", wire).lower()


class Model:
    """Reading from and writing to the wire's JSON objects."""

    #: Fields holding other models (or lists of them), by field name.
    nested: ClassVar[dict[str, type[Model]]] = {}
    #: True when the wire already uses the field names as they are (the OAuth2 token answer).
    snake_wire: ClassVar[bool] = False
    _wire_fields: ClassVar[tuple[tuple[str, str, Any], ...]]

    @classmethod
    def _fields(cls) -> tuple[tuple[str, str, Any], ...]:
        cached = cls.__dict__.get("_wire_fields")
        if cached is None:
            cached = tuple(
                (
                    f.name,
                    f.name if cls.snake_wire else wire_name(f.name),
                    None if f.default is dataclasses.MISSING else f.default,
                )
                for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            )
            cls._wire_fields = cached
        return cached

    @classmethod
    def from_wire(cls: type[M], data: dict[str, Any]) -> M:
        values: dict[str, Any] = {}
        nested = cls.nested
        for name, wire, default in cls._fields():
            value = data.get(wire, default)
            inner = nested.get(name)
            if inner is not None and value is not None:
                value = (
                    [inner.from_wire(v) for v in value]
                    if isinstance(value, list)
                    else inner.from_wire(value)
                )
            values[name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (snake_case), nested models included."""
        return dataclasses.asdict(self)  # type: ignore[call-overload,no-any-return]


@dataclass(frozen=True)
class Token(Model):
    snake_wire: ClassVar[bool] = True
    access_token: str
    token_type: str
    expires_in: int


@dataclass(frozen=True)
class Submitted(Model):
    """The answer to a submission: the network's key, whether it is new, its transformation keys."""

    key: str
    created: bool
    transformations: list[str]


@dataclass(frozen=True)
class Network(Model):
    key: str
    scope: str
    name: str
    state: NetworkState
    weight: float
    created_at: str
    created_by: str
    updated_at: str
    transformation_count: int


@dataclass(frozen=True)
class Transformation(Model):
    key: str
    scope: str
    name: str
    protocol: str
    inputs: Any
    created_at: str


@dataclass(frozen=True)
class Progress(Model):
    """A running task's last reported progress."""

    fraction: float | None
    message: str | None
    at: str


@dataclass(frozen=True)
class Task(Model):
    nested: ClassVar[dict[str, type[Model]]] = {"progress": Progress}
    id: str
    scope: str
    transformation: str
    extends: str | None
    status: TaskStatus
    priority: int
    attempts: int
    restarts: int
    created_at: str
    created_by: str
    updated_at: str
    status_changed_at: str
    reason: str | None
    last_error: str | None
    progress: Progress | None


@dataclass(frozen=True)
class HubTask(Task):
    """A task on a network's hub, with its weight there."""

    weight: float = 0.5


@dataclass(frozen=True)
class NetworkStateAnswer(Model):
    """A network's state after a change; ``state`` is None when it is not in the caller's scopes."""

    key: str
    state: NetworkState | None


@dataclass(frozen=True)
class BulkAnswer(Model):
    """One item of a bulk call: ``result`` None means not found in the caller's scopes."""

    task: str
    result: Any
    error: str | None = None


@dataclass(frozen=True)
class RestartPolicy(Model):
    """Failed tasks whose error text matches ``pattern`` go back to waiting, up to ``max_retries`` times."""

    pattern: str
    max_retries: int


@dataclass(frozen=True)
class StatusChange(Model):
    nested: ClassVar[dict[str, type[Model]]] = {"tasks": BulkAnswer}
    tasks: list[BulkAnswer]
    #: Tasks that extend a changed one and followed it (invalid and deleted cascade).
    cascaded: list[str]


@dataclass(frozen=True)
class Attempt(Model):
    """One claim of a task, from the claim to what ended it."""

    task: str
    attempt: int
    compute_identity: str
    compute_service: str
    hostname: str | None
    claimed_at: str
    ended_at: str | None
    outcome: AttemptOutcome | None
    result: str | None
    reason: str | None
    log_size_bytes: int | None


@dataclass(frozen=True)
class Failure(Attempt):
    """A failed attempt with its error class, first line and whole text (the traceback)."""

    error_class: str | None = None
    message: str = ""
    traceback: str = ""


@dataclass(frozen=True)
class LeaseHolder(Model):
    compute_identity: str
    compute_service: str
    hostname: str | None
    claimed_at: str
    lease_expires_at: str | None


@dataclass(frozen=True)
class TaskDetail(Model):
    nested: ClassVar[dict[str, type[Model]]] = {
        "attempts": Attempt,
        "lease_holder": LeaseHolder,
        "progress": Progress,
    }
    status: TaskStatus
    status_changed_at: str
    reason: str | None
    attempts: list[Attempt]
    lease_holder: LeaseHolder | None
    last_outcome: AttemptOutcome | None
    last_error_head: str | None
    progress: Progress | None


@dataclass(frozen=True)
class TaskHistory(Model):
    """A task's history; ``detail`` is None when the task is not in the caller's scopes."""

    nested: ClassVar[dict[str, type[Model]]] = {"result": TaskDetail}
    task: str
    result: TaskDetail | None
    error: str | None = None

    @property
    def detail(self) -> TaskDetail | None:
        return self.result


@dataclass(frozen=True)
class NetworkResult(Model):
    """A network's result for one transformation (its ok result over its failures)."""

    transformation: str
    name: str
    task: str
    result: str
    outcome: ResultOutcome
    sha256: str | None
    size_bytes: int | None
    created_at: str


@dataclass(frozen=True)
class Result(Model):
    """One attempt's result: ``ok`` with bytes, or ``failed`` with its error text."""

    id: str
    task: str
    scope: str
    attempt: int
    outcome: ResultOutcome
    sha256: str | None
    size_bytes: int | None
    error: str | None
    compute_service: str | None
    created_at: str


@dataclass(frozen=True)
class CreatedTask:
    """A task made by :meth:`athanor.Client.create_tasks`; ``actioned`` is None when not asked to."""

    task: str
    transformation: str
    actioned: bool | None = None


@dataclass(frozen=True)
class DownloadSummary:
    """What :meth:`athanor.Client.download_results` did."""

    total: int
    #: Fetched from the server.
    downloaded: int
    #: Copied from the local cache.
    from_cache: int
    #: Already in the folder with the right sha256.
    present: int
    bytes_downloaded: int
    #: The folder's index.json: one entry per transformation, with the file holding its result.
    index: str
