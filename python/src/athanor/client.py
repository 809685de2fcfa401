"""``Client``: the user API with the verbs of the ``athanor`` CLI, for scripts and notebooks."""

from __future__ import annotations

import codecs
import dataclasses
import concurrent.futures
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from . import models as m
from ._http import RetryHook, Transport
from .download import DownloadProgress, download_network_results
from .errors import InvalidArgument, NotFound, TimedOut

if TYPE_CHECKING:
    import pandas


#: The server the CLI calls when ATHANOR_URL is not set.
DEFAULT_URL = "http://127.0.0.1:8080"
#: Task statuses after which nothing more happens unless a user acts.
SETTLED: tuple[m.TaskStatus, ...] = ("complete", "error", "invalid", "deleted")
#: Ids per bulk call.
_bulk = 1000
#: Items per page when listing.
_page = 1000
#: After an attempt ends, how long following its log waits for the log to be uploaded.
_log_grace_s = 10.0

def _key(network: str | m.Network | m.Submitted) -> str:
    return network if isinstance(network, str) else network.key


def _read_secret(name: str) -> str | None:
    """``NAME`` or the file named by ``NAME_FILE`` (trimmed), as the CLI reads its secrets."""
    direct = os.environ.get(name)
    if direct:
        return direct
    file = os.environ.get(f"{name}_FILE")
    if not file:
        return None
    try:
        return Path(file).read_text("utf-8").strip()
    except OSError as cause:
        raise InvalidArgument(
            "invalid_config",
            f"cannot read {name}_FILE ({file}): {cause.strerror}. Point it at a readable file, or set {name}",
        ) from None


def _chunks(items: Sequence[str], size: int = _bulk) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def read_network_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A network file: ``{"name", "scope"?, "transformations": [{"name", "protocol", "inputs"}]}``."""
    try:
        with open(path, encoding="utf-8") as f:
            parsed = json.load(f)
    except (OSError, ValueError) as cause:
        detail = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        raise InvalidArgument(
            "invalid_argument", f"cannot read network file {os.fspath(path)}: {detail}"
        ) from None
    return _check_network(parsed, os.fspath(path))


def _check_network(network: Any, where: str) -> dict[str, Any]:
    if (
        not isinstance(network, Mapping)
        or not isinstance(network.get("name"), str)
        or not isinstance(network.get("transformations"), list)
    ):
        raise InvalidArgument(
            "invalid_argument",
            f'{where} must hold {{"name": "...", "transformations": [{{"name", "protocol", "inputs"}}, ...]}}',
        )
    return dict(network)


class Client:
    """A client of the Athanor user API.

    ``url``, ``identifier`` and ``key`` default to ``ATHANOR_URL`` (else ``http://127.0.0.1:8080``),
    ``ATHANOR_ID`` and ``ATHANOR_KEY`` (or the file named by ``ATHANOR_KEY_FILE``), as the CLI.

    ``timeout``: seconds a request may wait for the server (default 60). ``retry_for``: seconds
    a request keeps being retried while the server answers 503 (maintenance, a dependency
    down; default 120, 0 to raise at once); each wait follows the answer's ``Retry-After``, at
    most ``max_retry_wait`` seconds (default 30). The client is safe to share between threads.
    """

    def __init__(
        self,
        url: str | None = None,
        identifier: str | None = None,
        key: str | None = None,
        *,
        timeout: float = 60.0,
        retry_for: float = 120.0,
        max_retry_wait: float = 30.0,
        on_retry: RetryHook | None = None,
        max_connections: int = 16,
    ) -> None:
        url = url or os.environ.get("ATHANOR_URL") or DEFAULT_URL
        identifier = identifier or os.environ.get("ATHANOR_ID")
        key = key or _read_secret("ATHANOR_KEY")
        if not identifier or not key:
            raise InvalidArgument(
                "invalid_argument",
                "give Client(url, identifier, key), or set ATHANOR_ID and ATHANOR_KEY (or "
                "ATHANOR_KEY_FILE) to the user identity and key to use; 'athanor up' prints them on its first run",
            )
        self.url = url.rstrip("/")
        self.identifier = identifier
        self._http = Transport(
            url,
            identifier,
            key,
            timeout=timeout,
            retry_for=retry_for,
            max_retry_wait=max_retry_wait,
            on_retry=on_retry,
            max_connections=max_connections,
        )

    def __repr__(self) -> str:
        return f"Client({self.url!r}, {self.identifier!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- paging --------------------------------------------------------------------------------

    def _all(self, name: str, path: dict[str, Any] | None, query: dict[str, Any], cursor: str) -> list[Any]:
        everything: list[Any] = []
        after: str | None = None
        while True:
            page = self._http.call(name, path, query={**query, "limit": _page, "after": after})
            everything.extend(page)
            if len(page) < _page:
                return everything
            after = getattr(page[-1], cursor)

    # -- identity ------------------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        """``{"kind", "identifier", "scopes"}`` of the identity the client acts as."""
        return self._http.call("whoami")  # type: ignore[no-any-return]

    # -- networks ------------------------------------------------------------------------------

    def submit_network(
        self,
        network: str | os.PathLike[str] | Mapping[str, Any],
        scope: str | None = None,
        *,
        state: m.NetworkState | None = None,
    ) -> m.Submitted:
        """Submits a network from a JSON file or a dict (``athanor network submit``).

        ``scope`` (``org-campaign-project``) may also come from the network's ``"scope"``.
        Submitting the same network again returns the same key with ``created`` False.
        """
        data = (
            _check_network(network, "the network")
            if isinstance(network, Mapping)
            else read_network_file(network)
        )
        scope = scope or data.get("scope")
        if not scope:
            raise InvalidArgument(
                "invalid_argument",
                'give scope="org-campaign-project" (or "scope" in the network)',
            )
        return self._http.call(  # type: ignore[no-any-return]
            "submit_network",
            body={
                "scope": scope,
                "name": data["name"],
                "transformations": data["transformations"],
                "state": state,
            },
        )

    def networks(
        self,
        scope: str | None = None,
        *,
        state: m.NetworkState | None = None,
        name: str | None = None,
    ) -> list[m.Network]:
        """Networks in the caller's scopes (``scope`` may hold wildcards)."""
        return self._all("list_networks", None, {"scope": scope, "state": state, "name": name}, "key")

    def network(self, network: str | m.Network | m.Submitted) -> m.Network:
        return self._http.call("get_network", {"key": _key(network)})  # type: ignore[no-any-return]

    def transformations(self, network: str | m.Network | m.Submitted) -> list[m.Transformation]:
        """The network's transformations."""
        return self._all("network_transformations", {"key": _key(network)}, {}, "key")

    def find_transformations(
        self, scope: str | None = None, *, name: str | None = None, protocol: str | None = None
    ) -> list[m.Transformation]:
        """Transformations in the caller's scopes, by scope, name or protocol."""
        return self._all(
            "list_transformations", None, {"scope": scope, "name": name, "protocol": protocol}, "key"
        )

    def transformation(self, key: str) -> m.Transformation:
        return self._http.call("get_transformation", {"key": key})  # type: ignore[no-any-return]

    def network_status(self, network: str | m.Network | m.Submitted) -> dict[str, int]:
        """Task counts by status over the network's transformations (``athanor network status``)."""
        return self._http.call("network_status", {"key": _key(network)})  # type: ignore[no-any-return]

    def set_network_state(
        self,
        networks: str | m.Network | m.Submitted | Sequence[str | m.Network | m.Submitted],
        state: m.NetworkState,
    ) -> list[m.NetworkStateAnswer]:
        """Sets the state of networks; only ``active`` ones are claimable (``athanor network state``)."""
        keys = [_key(networks)] if isinstance(networks, (str, m.Network, m.Submitted)) else [_key(n) for n in networks]
        return self._http.call(  # type: ignore[no-any-return]
            "set_network_state", body={"networks": keys, "state": state}
        )

    def set_weight(self, network: str | m.Network | m.Submitted, weight: float) -> m.Network:
        """Sets the network hub's weight, 0 (paused) to 1 (``athanor network weight``)."""
        return self._http.call(  # type: ignore[no-any-return]
            "set_network_weight", {"key": _key(network)}, body={"weight": weight}
        )

    def hub_tasks(self, network: str | m.Network | m.Submitted) -> list[m.HubTask]:
        """The tasks on the network's hub, with their weights."""
        return self._all("network_tasks", {"key": _key(network)}, {}, "id")

    def scope_status(self, scope: str | None = None) -> dict[str, dict[str, int]]:
        """Task counts by status per scope."""
        return self._http.call("scope_status", query={"scope": scope})  # type: ignore[no-any-return]

    # -- events, webhooks, strategies -------------------------------------------------------

    def events(self, after: int = 0, **filters: Any) -> dict[str, Any]:
        """A page of events after ``after`` (``{"events", "next"}``); filters: scope, type, network, limit."""
        return self._http.call("events", query={"after": after, **filters})  # type: ignore[no-any-return]

    def add_webhook(self, url: str, scope: str, events: Sequence[str] | None = None) -> dict[str, Any]:
        """Adds a webhook endpoint; the answer holds its signing ``secret``, shown this once."""
        body: dict[str, Any] = {"url": url, "scope": scope}
        if events is not None:
            body["events"] = list(events)
        return self._http.call("add_webhook", body=body)  # type: ignore[no-any-return]

    def list_webhooks(self) -> list[dict[str, Any]]:
        return self._http.call("list_webhooks")  # type: ignore[no-any-return]

    def get_webhook(self, webhook: str, deliveries: int | None = None) -> dict[str, Any]:
        """An endpoint with its newest deliveries."""
        return self._http.call("get_webhook", {"id": webhook}, query={"deliveries": deliveries})  # type: ignore[no-any-return]

    def remove_webhook(self, webhook: str) -> dict[str, Any]:
        return self._http.call("remove_webhook", {"id": webhook})  # type: ignore[no-any-return]

    def test_webhook(self, webhook: str) -> dict[str, Any]:
        """Sends a signed ``webhook.test`` message now; ``{"ok", "statusCode", "error", "durationMs"}``."""
        return self._http.call("test_webhook", {"id": webhook})  # type: ignore[no-any-return]

    def enable_webhook(self, webhook: str) -> dict[str, Any]:
        return self._http.call("enable_webhook", {"id": webhook})  # type: ignore[no-any-return]

    def list_strategies(self) -> list[dict[str, Any]]:
        return self._http.call("list_strategies")  # type: ignore[no-any-return]

    def set_strategy(
        self, network: str | m.Network | m.Submitted, name: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Names the network's strategy; the server runs it whenever the network's results change."""
        body: dict[str, Any] = {"name": name}
        if params is not None:
            body["params"] = params
        return self._http.call("set_strategy", {"key": _key(network)}, body=body)  # type: ignore[no-any-return]

    def get_strategy(self, network: str | m.Network | m.Submitted) -> dict[str, Any]:
        return self._http.call("get_strategy", {"key": _key(network)})  # type: ignore[no-any-return]

    def remove_strategy(self, network: str | m.Network | m.Submitted) -> dict[str, Any]:
        return self._http.call("remove_strategy", {"key": _key(network)})  # type: ignore[no-any-return]

    def preview_strategy(self, network: str | m.Network | m.Submitted) -> dict[str, Any]:
        """What the strategy would do now; nothing is done."""
        return self._http.call("preview_strategy", {"key": _key(network)})  # type: ignore[no-any-return]

    def ensure_tasks(
        self,
        transformation: str,
        count: int,
        network: str | m.Network | m.Submitted | None = None,
        priority: int | None = None,
        weight: float | None = None,
    ) -> dict[str, Any]:
        """Makes sure ``count`` tasks of the transformation exist, creating only the difference."""
        body: dict[str, Any] = {"count": count}
        if network is not None:
            body["network"] = _key(network)
        if priority is not None:
            body["priority"] = priority
        if weight is not None:
            body["weight"] = weight
        return self._http.call("ensure_tasks", {"key": transformation}, body=body)  # type: ignore[no-any-return]

    def watch(
        self,
        network: str | m.Network | m.Submitted,
        *,
        interval: float = 1.0,
        timeout: float | None = None,
        progress: bool = True,
    ) -> dict[str, int]:
        """Follows a network until every task has settled (``athanor network watch``).

        Shows a tqdm bar (in a terminal or a notebook) when tqdm is installed and ``progress`` is
        true. Returns the final counts by status; raises :class:`TimedOut` after ``timeout`` s.
        """
        key = _key(network)
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = None
        if progress:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                bar = tqdm(desc=f"{key[:12]}…", unit="task", file=sys.stderr)
        try:
            while True:
                counts = self.network_status(key)
                total = sum(counts.values())
                if total == 0:
                    raise InvalidArgument(
                        "invalid_argument",
                        f"network {key} has no tasks to watch: create them with "
                        f"client.create_tasks({key!r})",
                    )
                settled = sum(counts.get(s, 0) for s in SETTLED)
                if bar is not None:
                    bar.total = total
                    bar.n = settled
                    bar.set_postfix_str(_describe(counts), refresh=False)
                    bar.refresh()
                if settled == total:
                    return counts
                if deadline is not None and time.monotonic() + interval > deadline:
                    raise TimedOut(
                        "timed_out",
                        f"network {key} has not finished after {timeout} s: {_describe(counts)}",
                    )
                time.sleep(interval)
        finally:
            if bar is not None:
                bar.close()

    # -- restart policies ----------------------------------------------------------------------

    def restart_policies(self, network: str | m.Network | m.Submitted) -> list[m.RestartPolicy]:
        return self._http.call("restart_policies", {"key": _key(network)})  # type: ignore[no-any-return]

    def add_restart_policy(
        self, network: str | m.Network | m.Submitted, pattern: str, max_retries: int
    ) -> list[m.RestartPolicy]:
        """Failed tasks whose error text matches ``pattern`` go back to waiting, up to ``max_retries``."""
        return self._http.call(  # type: ignore[no-any-return]
            "add_restart_policies",
            {"key": _key(network)},
            body={"policies": [{"pattern": pattern, "maxRetries": max_retries}]},
        )

    def remove_restart_policies(
        self, network: str | m.Network | m.Submitted, patterns: Sequence[str]
    ) -> list[m.RestartPolicy]:
        return self._http.call(  # type: ignore[no-any-return]
            "remove_restart_policies", {"key": _key(network)}, body={"patterns": list(patterns)}
        )

    # -- tasks ---------------------------------------------------------------------------------

    def create_tasks(
        self,
        network: str | m.Network | m.Submitted | None,
        transformations: Sequence[str] | None = None,
        *,
        count: int = 1,
        action: bool = True,
        weight: float | None = None,
        priority: int | None = None,
        extends: str | None = None,
        concurrency: int = 8,
    ) -> list[m.CreatedTask]:
        """Creates ``count`` tasks per transformation and, with ``action``, puts them on the
        network's hub so compute services claim them (``athanor task create --network --action``).

        ``transformations`` defaults to every transformation of ``network``. Without a network,
        give ``transformations`` and ``action=False``.
        """
        if network is None and (action or transformations is None):
            raise InvalidArgument(
                "invalid_argument",
                "give the network whose hub the tasks go on (or transformations with action=False)",
            )
        if weight is not None and not action:
            raise InvalidArgument("invalid_argument", "weight applies only with action=True")
        if extends is not None and (transformations is None or len(transformations) != 1):
            raise InvalidArgument("invalid_argument", "extends needs the one transformation it continues")
        keys = (
            list(transformations)
            if transformations is not None
            else [t.key for t in self.transformations(network)]  # type: ignore[arg-type]
        )
        body = {"count": count, "priority": priority, "extends": extends}

        def create(transformation: str) -> list[m.CreatedTask]:
            tasks: list[m.Task] = self._http.call("create_tasks", {"key": transformation}, body=body)
            return [m.CreatedTask(t.id, transformation) for t in tasks]

        created: list[m.CreatedTask] = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            for batch in pool.map(create, keys):
                created.extend(batch)
        if not action:
            return created
        answers = self.action_tasks(network, [c.task for c in created], weight=weight)  # type: ignore[arg-type]
        actioned = {a.task: a.result is True for a in answers}
        return [m.CreatedTask(c.task, c.transformation, actioned.get(c.task, False)) for c in created]

    def tasks(
        self,
        network: str | m.Network | m.Submitted | None = None,
        *,
        scope: str | None = None,
        status: m.TaskStatus | None = None,
        transformation: str | None = None,
    ) -> list[m.Task]:
        """Tasks in the caller's scopes (``athanor task list``)."""
        query = {
            "network": None if network is None else _key(network),
            "scope": scope,
            "status": status,
            "transformation": transformation,
        }
        return self._all("list_tasks", None, query, "id")

    def task(self, task: str) -> m.Task:
        return self._http.call("get_task", {"id": task})  # type: ignore[no-any-return]

    def tasks_frame(
        self,
        network: str | m.Network | m.Submitted | None = None,
        *,
        scope: str | None = None,
        status: m.TaskStatus | None = None,
    ) -> pandas.DataFrame:
        """The tasks as a ``pandas.DataFrame``, indexed by task id, times as UTC datetimes.

        Needs the ``pandas`` extra: ``pip install 'athanor-client[pandas]'``.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "tasks_frame needs pandas: pip install 'athanor-client[pandas]'"
            ) from None
        rows = []
        for t in self.tasks(network, scope=scope, status=status):
            row = t.to_dict()
            progress = row.pop("progress")
            row["progress"] = None if progress is None else progress["fraction"]
            rows.append(row)
        columns = [f.name for f in dataclasses.fields(m.Task)]
        frame = pd.DataFrame(rows, columns=columns)
        for column in ("created_at", "updated_at", "status_changed_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame.set_index("id")

    def action_tasks(
        self, network: str | m.Network | m.Submitted, tasks: Sequence[str], *, weight: float | None = None
    ) -> list[m.BulkAnswer]:
        """Puts tasks on the network's hub so compute services can claim them (``athanor task action``)."""
        answers: list[m.BulkAnswer] = []
        for batch in _chunks(tasks):
            answers += self._http.call(
                "action_tasks", {"key": _key(network)}, body={"tasks": batch, "weight": weight}
            )
        return answers

    def cancel_tasks(self, network: str | m.Network | m.Submitted, tasks: Sequence[str]) -> list[m.BulkAnswer]:
        """Takes tasks off the network's hub (``athanor task cancel``)."""
        answers: list[m.BulkAnswer] = []
        for batch in _chunks(tasks):
            answers += self._http.call("cancel_tasks", {"key": _key(network)}, body={"tasks": batch})
        return answers

    def set_priority(self, tasks: Sequence[str], priority: int) -> list[m.BulkAnswer]:
        """Sets the priority of tasks, 1 the highest (``athanor task priority --set``)."""
        answers: list[m.BulkAnswer] = []
        for batch in _chunks(tasks):
            answers += self._http.call("set_task_priority", body={"tasks": batch, "priority": priority})
        return answers

    def set_task_status(
        self,
        tasks: Sequence[str],
        status: Literal["waiting", "invalid", "deleted"],
        *,
        reason: str | None = None,
    ) -> m.StatusChange:
        """Sets the status of tasks (``athanor task status --set``); invalid and deleted cascade."""
        answers: list[m.BulkAnswer] = []
        cascaded: list[str] = []
        for batch in _chunks(tasks):
            change: m.StatusChange = self._http.call(
                "set_task_status", body={"tasks": batch, "status": status, "reason": reason}
            )
            answers += change.tasks
            cascaded += change.cascaded
        return m.StatusChange(answers, cascaded)

    def restart_tasks(
        self,
        network: str | m.Network | m.Submitted,
        tasks: Sequence[str] | None = None,
        *,
        reason: str | None = None,
        weight: float | None = None,
    ) -> m.StatusChange:
        """Sends tasks back to waiting and onto the network's hub (a failure took them off it),
        as the console's restart does; ``tasks`` defaults to every task of the network in ``error``.
        ``reason`` is kept on each task and shown in its history.
        """
        ids = list(tasks) if tasks is not None else [t.id for t in self.tasks(network, status="error")]
        if not ids:
            return m.StatusChange([], [])
        change = self.set_task_status(ids, "waiting", reason=reason)
        back = [a.task for a in change.tasks if a.result == "waiting" and a.error is None]
        if back:
            self.action_tasks(network, back, weight=weight)
        return change

    def task_history(
        self,
        tasks: Sequence[str] | None = None,
        *,
        network: str | m.Network | m.Submitted | None = None,
        retried: bool = False,
    ) -> list[m.TaskHistory]:
        """Attempts of tasks: where each ran, how it ended and why (``athanor task history``)."""
        if tasks is None and network is None:
            raise InvalidArgument("invalid_argument", "name tasks or give network=...")
        ids = list(tasks or [])
        if network is not None:
            ids += [t.id for t in self.tasks(network)]
        history: list[m.TaskHistory] = []
        for batch in _chunks(ids, 10_000):
            history += self._http.call("task_details", body={"tasks": batch})
        if retried:
            history = [h for h in history if h.result is not None and len(h.result.attempts) > 1]
        return history

    def task_attempts(self, task: str) -> list[m.Attempt]:
        return self._http.call("task_attempts", {"id": task})  # type: ignore[no-any-return]

    def task_errors(
        self, network: str | m.Network | m.Submitted | None = None, *, scope: str | None = None
    ) -> list[m.Failure]:
        """Every failed attempt with its error class, message and whole text (``athanor task errors``)."""
        if network is None and scope is None:
            raise InvalidArgument("invalid_argument", "give network=... or scope=...")
        failures: list[m.Failure] = []
        after: str | None = None
        while True:
            query = {"limit": _page, "after": after}
            page: list[m.Failure] = (
                self._http.call("network_failures", {"key": _key(network)}, query=query)
                if network is not None
                else self._http.call("failures", query={**query, "scope": scope})
            )
            if not page:
                return failures
            failures += page
            after = f"{page[-1].task}:{page[-1].attempt}"

    @overload
    def task_logs(self, task: str, *, attempt: int | None = ..., follow: Literal[False] = ...) -> str: ...

    @overload
    def task_logs(self, task: str, *, attempt: int | None = ..., follow: Literal[True]) -> Iterator[str]: ...

    def task_logs(
        self, task: str, *, attempt: int | None = None, follow: bool = False
    ) -> str | Iterator[str]:
        """An attempt's log (default the latest attempt), as ``athanor task logs``.

        With ``follow``, an iterator of text as it arrives, until the attempt ends (or, without
        ``attempt``, until the task settles, going on with each new attempt).
        """
        if follow:
            return self._follow_logs(task, attempt)
        attempts = self.task_attempts(task)
        if not attempts:
            raise NotFound("not_found", f"task '{task}' was never claimed: it has no log yet")
        number = attempt if attempt is not None else attempts[-1].attempt
        text, _, _ = self._read_log(task, number, 0)
        return text

    def _read_log(self, task: str, attempt: int, offset: int) -> tuple[str, int, bool]:
        """The log from byte ``offset`` on, its byte count, and whether it is the uploaded whole."""
        with self._http.stream(
            "attempt_log", {"id": task, "n": attempt}, query={"offset": offset or None}
        ) as response:
            data = response.read()
            complete = response.headers.get("x-athanor-log-complete") != "false"
        return data.decode("utf-8", "replace"), len(data), complete

    def _follow_logs(self, task: str, only: int | None) -> Iterator[str]:
        number = only
        printed = 0
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            attempts = self.task_attempts(task)
            current = self.task(task)
            if number is None and attempts:
                number = attempts[-1].attempt
            found = next((a for a in attempts if a.attempt == number), None)
            if found is None:
                if current.status not in SETTLED:
                    time.sleep(1)
                    continue
                if only is None and number is not None:
                    return
                raise NotFound(
                    "not_found",
                    f"task '{task}' is {current.status} and has no attempt {number or 1}: there is no log to follow",
                )
            if found.ended_at is None:
                data = self._log_bytes(task, found.attempt, printed)
                printed += len(data)
                if data:
                    yield decoder.decode(data)
                time.sleep(1)
                continue
            if found.log_size_bytes is None and time.time() < _epoch(found.ended_at) + _log_grace_s:
                time.sleep(1)
                continue
            try:
                data = self._log_bytes(task, found.attempt, printed)
            except NotFound:
                data = b""
            text = decoder.decode(data, final=True)
            if text:
                yield text
            if only is not None or (current.status in SETTLED and len(attempts) <= found.attempt):
                return
            number = found.attempt + 1
            printed = 0
            decoder.reset()

    def _log_bytes(self, task: str, attempt: int, offset: int) -> bytes:
        with self._http.stream(
            "attempt_log", {"id": task, "n": attempt}, query={"offset": offset or None}
        ) as response:
            return response.read()

    # -- results -------------------------------------------------------------------------------

    def results(
        self, network: str | m.Network | m.Submitted, *, outcome: m.ResultOutcome = "ok"
    ) -> Iterator[m.NetworkResult]:
        """The network's results, one per transformation, page by page as they are read."""
        after: str | None = None
        while True:
            page: list[m.NetworkResult] = self._http.call(
                "network_results",
                {"key": _key(network)},
                query={"outcome": outcome, "limit": _page, "after": after},
            )
            yield from page
            if len(page) < _page:
                return
            after = page[-1].transformation

    def task_results(self, task: str) -> list[m.Result]:
        """A task's results, one per attempt (``athanor result list``)."""
        return self._http.call("task_results", {"id": task})  # type: ignore[no-any-return]

    def result(self, result: str) -> m.Result:
        return self._http.call("get_result", {"id": result})  # type: ignore[no-any-return]

    def read_result(self, result: str | m.NetworkResult | m.Result) -> bytes:
        """A result's bytes, whole (for small results; :meth:`iter_result` streams)."""
        return b"".join(self.iter_result(result))

    def iter_result(
        self, result: str | m.NetworkResult | m.Result, chunk_bytes: int = 1024 * 1024
    ) -> Iterator[bytes]:
        """A result's bytes, streamed in chunks (``athanor result get``)."""
        with self._http.stream("download_result", {"id": _result_id(result)}) as response:
            yield from response.iter_bytes(chunk_bytes)

    def download_results(
        self,
        network: str | m.Network | m.Submitted,
        folder: str | os.PathLike[str],
        *,
        outcome: m.ResultOutcome = "ok",
        concurrency: int = 4,
        cache_dir: str | os.PathLike[str] | bool | None = None,
        cache_max_bytes: int = 1024**3,
        progress: bool | Callable[[DownloadProgress], None] = False,
    ) -> m.DownloadSummary:
        """Downloads every result of a network into ``folder`` (``athanor result download``).

        One file per transformation (named by its key) and ``index.json``. Resumable: a file
        already holding the right bytes is kept, one the local cache holds is copied from it,
        and each download is renamed into place only once its sha256 matches. The cache is the
        CLI's (``cache_dir`` default ``~/.cache/athanor/results``; ``False`` for none), so either
        tool reuses what the other fetched. ``progress``: a callback, or True for a tqdm bar.
        """
        callback: Callable[[DownloadProgress], None] | None = None
        bar = None
        if callable(progress):
            callback = progress
        elif progress:
            from tqdm.auto import tqdm

            bar = tqdm(desc="download", unit="result", file=sys.stderr)

            def callback(p: DownloadProgress) -> None:
                bar.total = p.total
                bar.n = p.done
                bar.set_postfix_str(f"{p.bytes_downloaded / 1024**2:.1f} MiB", refresh=False)
                bar.refresh()

        try:
            return download_network_results(
                self._http,
                _key(network),
                folder,
                outcome=outcome,
                concurrency=concurrency,
                cache_dir=cache_dir,
                cache_max_bytes=cache_max_bytes,
                on_progress=callback,
            )
        finally:
            if bar is not None:
                bar.close()


def _result_id(result: str | m.NetworkResult | m.Result) -> str:
    if isinstance(result, str):
        return result
    return result.result if isinstance(result, m.NetworkResult) else result.id


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


_shown = ("complete", "running", "waiting", "error", "invalid", "deleted")


def _describe(counts: Mapping[str, int]) -> str:
    return "  ".join(
        f"{s} {counts.get(s, 0)}" for s in _shown if s == "complete" or counts.get(s, 0) > 0
    )


__all__ = ["DEFAULT_URL", "SETTLED", "Client", "read_network_file"]
