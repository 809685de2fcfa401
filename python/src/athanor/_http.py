"""HTTP plumbing: bearer tokens fetched on demand and renewed on a 401, 503s retried after their
Retry-After, and every refusal turned into the typed exception for the server's code."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from .errors import AthanorError, ServerUnreachable, TimedOut, error_for
from .routes import ROUTES, Route

#: Called before each retry of a 503 with (route name, seconds it waits, the error answered).
RetryHook = Callable[[str, float, AthanorError], None]


def _error_from(response: httpx.Response) -> AthanorError:
    code: str | None = None
    message = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = error.get("code") if isinstance(error.get("code"), str) else None
            if isinstance(error.get("message"), str) and error["message"]:
                message = error["message"]
    except ValueError:
        pass  # not a JSON error body: keep the status line
    return error_for(code, message, response.status_code)


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from this server; fall back to the client's pace


class Transport:
    def __init__(
        self,
        url: str,
        identifier: str,
        key: str,
        *,
        timeout: float,
        retry_for: float,
        max_retry_wait: float,
        on_retry: RetryHook | None,
        max_connections: int,
    ) -> None:
        self.base_url = url.rstrip("/")
        self._identifier = identifier
        self._key = key
        self._retry_for = retry_for
        self._max_retry_wait = max_retry_wait
        self._on_retry = on_retry
        self._token: str | None = None
        self._token_lock = threading.Lock()
        self._timeout = timeout
        self._objects_http: httpx.Client | None = None
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            # Certificates load only for https: reading the CA bundle costs a script's start-up
            # more than its first request.
            verify=self.base_url.startswith("https:"),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"user-agent": "athanor-client-python"},
        )

    def close(self) -> None:
        self._http.close()
        if self._objects_http is not None:
            self._objects_http.close()

    # -- tokens --------------------------------------------------------------------------------

    def _fetch_token(self, stale: str | None) -> str:
        with self._token_lock:
            # Another thread may have renewed it while this one waited.
            if self._token is not None and self._token != stale:
                return self._token
            route = ROUTES["token"]
            response = self._exchange(
                "token",
                route,
                route.path,
                None,
                {"username": self._identifier, "password": self._key},
                None,
                stream=False,
            )
            self._token = str(response.json()["access_token"])
            return self._token

    # -- requests ------------------------------------------------------------------------------

    def _build(
        self,
        route: Route,
        path: str,
        query: dict[str, Any] | None,
        body: Any,
        token: str | None,
    ) -> httpx.Request:
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return self._http.build_request(
            route.method,
            path,
            params=params or None,
            json=body,
            headers=headers,
        )

    def _exchange(
        self,
        name: str,
        route: Route,
        path: str,
        query: dict[str, Any] | None,
        body: Any,
        token: str | None,
        *,
        stream: bool,
    ) -> httpx.Response:
        """One request, retried while the server answers 503 (for at most ``retry_for`` seconds)."""
        give_up_at = time.monotonic() + self._retry_for
        while True:
            request = self._build(route, path, query, body, token)
            try:
                response = self._http.send(request, stream=True)
            except httpx.TimeoutException as cause:
                raise TimedOut(
                    "timed_out",
                    f"the Athanor server at {self.base_url} did not answer {route.method} {path} "
                    f"in time ({cause}); raise Client(timeout=...) for slow calls",
                ) from None
            except httpx.TransportError as cause:
                raise ServerUnreachable(
                    "server_unreachable",
                    f"cannot reach the Athanor server at {self.base_url}: {cause}. "
                    "Check ATHANOR_URL and that the server runs",
                ) from None
            if response.status_code == 302 and route.method == "GET":
                response = self._follow(response)
            if response.is_success:
                if not stream:
                    response.read()
                return response
            try:
                response.read()
            finally:
                response.close()
            error = _error_from(response)
            if response.status_code == 503:
                remaining = give_up_at - time.monotonic()
                wait = min(
                    _retry_after_seconds(response) or 1.0, self._max_retry_wait, max(remaining, 0)
                )
                if remaining > 0:
                    if self._on_retry is not None:
                        self._on_retry(name, wait, error)
                    time.sleep(wait)
                    continue
            raise error from None

    def _follow(self, response: httpx.Response) -> httpx.Response:
        """A download handed to the object store (a presigned URL): fetched without our token."""
        location = response.headers.get("location", "")
        response.close()
        if self._objects_http is None:
            self._objects_http = httpx.Client(timeout=httpx.Timeout(self._timeout))
        try:
            return self._objects_http.send(
                httpx.Request("GET", response.url.join(location)), stream=True
            )
        except httpx.TransportError as cause:
            raise ServerUnreachable(
                "server_unreachable", f"cannot fetch the result from the object store: {cause}"
            ) from None

    def request(
        self,
        name: str,
        path_params: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        *,
        stream: bool = False,
    ) -> httpx.Response:
        """Sends a declared route; on a 401 fetches a new token once and sends it again."""
        route = ROUTES[name]
        _check_fields(name, "query", query, route.query)
        _check_fields(name, "body", body, route.body)
        path = route.path.format(
            **{k: quote(str(v), safe="") for k, v in (path_params or {}).items()}
        )
        if body is not None:
            body = {k: v for k, v in body.items() if v is not None}
        token = self._token or self._fetch_token(None)
        try:
            return self._exchange(name, route, path, query, body, token, stream=stream)
        except AthanorError as error:
            if error.code != "unauthenticated":
                raise
        return self._exchange(
            name, route, path, query, body, self._fetch_token(token), stream=stream
        )

    def json(self, name: str, path_params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        response = self.request(name, path_params, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise error_for(
                "internal", f"the server's answer to {name} was not JSON", response.status_code
            ) from None

    def call(self, name: str, path_params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Sends a declared route and reads its answer into the route's model."""
        route = ROUTES[name]
        data = self.json(name, path_params, **kwargs)
        if route.answer is None:
            return data
        if route.many:
            return [route.answer.from_wire(item) for item in data]
        return route.answer.from_wire(data)

    @contextlib.contextmanager
    def stream(
        self,
        name: str,
        path_params: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Iterator[httpx.Response]:
        response = self.request(name, path_params, query=query, stream=True)
        try:
            yield response
        except httpx.TransportError as cause:
            raise ServerUnreachable(
                "server_unreachable", f"the connection to {self.base_url} broke off: {cause}"
            ) from None
        finally:
            response.close()


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_fields(name: str, where: str, given: dict[str, Any] | None, declared: frozenset[str]) -> None:
    extra = set(given or {}) - declared
    if extra:
        raise AssertionError(f"route {name} declares no {where} field {sorted(extra)}")
