"""Every verb of the client against a live server: what a scientist would notice."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from athanor import (
    AthanorError,
    Client,
    Forbidden,
    InvalidArgument,
    Maintenance,
    NotFound,
    ServerUnreachable,
    Unauthenticated,
)
from conftest import echo_network


def assert_clean(error: AthanorError) -> None:
    """Raised from the library without a chained traceback of its internals."""
    assert error.__cause__ is None
    assert error.__suppress_context__


# -- credentials and bad input -----------------------------------------------------------------


def test_credentials_come_from_the_environment_or_a_key_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(os.environ["ATHANOR_KEY"] + "\n")
    monkeypatch.setenv("ATHANOR_KEY_FILE", str(key_file))
    monkeypatch.delenv("ATHANOR_KEY")
    with Client() as c:
        assert c.whoami()["identifier"] == os.environ["ATHANOR_ID"]
    monkeypatch.delenv("ATHANOR_ID")
    with pytest.raises(InvalidArgument, match="ATHANOR_ID"):
        Client()


def test_a_wrong_key_is_unauthenticated_with_the_servers_message() -> None:
    with Client(key="not-the-key-0123456789") as c, pytest.raises(Unauthenticated) as caught:
        c.networks()
    assert caught.value.code == "unauthenticated"
    assert caught.value.status == 401
    assert caught.value.message
    assert_clean(caught.value)


def test_an_unreachable_server_is_a_typed_error() -> None:
    with Client("http://127.0.0.1:9", "alice", "k") as c, pytest.raises(ServerUnreachable) as caught:
        c.networks()
    assert "127.0.0.1:9" in caught.value.message
    assert_clean(caught.value)


def test_a_bad_scope_names_the_bad_part(client: Client, unique: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.submit_network(echo_network(unique, 1), scope="org-*-proj")
    assert caught.value.code == "invalid_scope"
    assert "org-*-proj" in caught.value.message
    assert_clean(caught.value)


def test_a_missing_network_file_names_the_file(client: Client, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(InvalidArgument, match="nowhere.json"):
        client.submit_network(missing, scope="org-camp-p")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidArgument, match="broken.json"):
        client.submit_network(broken, scope="org-camp-p")


def test_a_network_failing_the_servers_schema_gets_its_message(client: Client, unique: str) -> None:
    network = {"name": unique, "transformations": [{"name": "t", "inputs": {}}]}
    with pytest.raises(InvalidArgument) as caught:
        client.submit_network(network, scope="org-camp-p")
    assert caught.value.status == 400
    assert "protocol" in caught.value.message
    assert client.networks(name=unique) == []


def test_a_token_the_server_no_longer_accepts_is_renewed(client: Client, unique: str) -> None:
    client.whoami()
    client._http._token = "expired.token.value"  # what an expired token looks like to the client
    assert client.whoami()["identifier"] == os.environ["ATHANOR_ID"]


# -- networks, tasks, results ------------------------------------------------------------------


def test_submit_from_a_file_again_returns_the_same_key(client: Client, tmp_path: Path, unique: str) -> None:
    path = tmp_path / "network.json"
    path.write_text(json.dumps({**echo_network(unique, 4), "scope": "org-camp-files"}))
    first = client.submit_network(path)
    again = client.submit_network(str(path))
    assert first.created and not again.created
    assert again.key == first.key and len(first.transformations) == 4
    network = client.network(first.key)
    assert (network.scope, network.name, network.state, network.transformation_count) == (
        "org-camp-files",
        unique,
        "active",
        4,
    )
    assert {n.key for n in client.networks("org-camp-*", name=unique)} == {first.key}
    assert sorted(t.name for t in client.transformations(first)) == ["t0", "t1", "t2", "t3"]
    assert client.transformation(first.transformations[0]).protocol == "echo"
    assert {t.key for t in client.find_transformations("org-camp-files", protocol="echo")} >= set(
        first.transformations
    )


def test_a_network_runs_to_completion_and_every_view_agrees(client: Client, unique: str, tmp_path: Path) -> None:
    net = client.submit_network(echo_network(unique, 6), scope="org-camp-p")
    created = client.create_tasks(net, count=1, action=True, weight=0.8)
    assert len(created) == 6 and all(c.actioned for c in created)
    assert {c.transformation for c in created} == set(net.transformations)
    counts = client.watch(net, interval=0.2, timeout=60, progress=False)
    assert counts == {"complete": 6}
    assert client.network_status(net) == {"complete": 6}
    assert client.scope_status("org-camp-p")["org-camp-p"]["complete"] >= 6
    tasks = client.tasks(net)
    assert sorted(t.id for t in tasks) == sorted(c.task for c in created)
    assert all(t.status == "complete" and t.attempts == 1 for t in tasks)
    history = client.task_history(network=net)
    assert len(history) == 6
    assert all(h.detail is not None and h.detail.last_outcome == "ok" for h in history)
    assert client.task_history(network=net, retried=True) == []
    results = list(client.results(net))
    assert len(results) == 6 and all(r.outcome == "ok" and r.sha256 for r in results)
    by_transformation = {t.key: t.inputs for t in client.transformations(net)}
    for r in results:
        assert json.loads(client.read_result(r)) == by_transformation[r.transformation]
    one = client.task_results(created[0].task)
    assert len(one) == 1 and one[0].outcome == "ok" and client.result(one[0].id).sha256 == one[0].sha256
    frame = client.tasks_frame(net)
    assert len(frame) == 6 and set(frame.index) == {c.task for c in created}
    assert set(frame["status"]) == {"complete"}
    assert str(frame["created_at"].dtype).startswith("datetime64")


def test_priority_weight_state_action_and_cancel(client: Client, unique: str) -> None:
    # Inactive: nothing is claimed, so every change stays visible.
    net = client.submit_network(echo_network(unique, 3), scope="org-camp-p", state="inactive")
    created = client.create_tasks(net, action=False, priority=7)
    ids = [c.task for c in created]
    assert all(c.actioned is None for c in created)
    assert {client.task(i).priority for i in ids} == {7}
    assert client.hub_tasks(net) == []
    assert all(a.result is True for a in client.action_tasks(net, ids, weight=0.3))
    assert sorted((t.id, t.weight) for t in client.hub_tasks(net)) == sorted((i, 0.3) for i in ids)
    assert [a.result for a in client.set_priority(ids[:2], 2)] == [2, 2]
    assert [client.task(i).priority for i in ids] == [2, 2, 7]
    assert client.set_weight(net, 0.25).weight == 0.25
    assert all(a.result is True for a in client.cancel_tasks(net, ids[:1]))
    assert sorted(t.id for t in client.hub_tasks(net)) == sorted(ids[1:])
    assert [a.state for a in client.set_network_state(net, "deleted")] == ["deleted"]
    assert client.network(net).state == "deleted"
    missing = client.set_network_state(["net-" + "0" * 64], "active")
    assert missing[0].state is None


def test_failures_restart_policies_errors_and_restarts(client: Client, unique: str) -> None:
    network = {
        "name": unique,
        "transformations": [
            {"name": "flaky", "protocol": "sleep", "inputs": {"seconds": 0, "fail": f"transient {unique}"}},
            {"name": "broken", "protocol": "sleep", "inputs": {"seconds": 0, "fail": f"permanent {unique}"}},
        ],
    }
    net = client.submit_network(network, scope="org-camp-p")
    policies = client.add_restart_policy(net, "^transient", 2)
    assert [(p.pattern, p.max_retries) for p in policies] == [("^transient", 2)]
    assert [p.pattern for p in client.restart_policies(net)] == ["^transient"]
    created = client.create_tasks(net)
    assert client.watch(net, interval=0.2, timeout=90, progress=False) == {"error": 2}
    by_name = {t.name: t.key for t in client.transformations(net)}
    task_of = {c.transformation: c.task for c in created}
    flaky, broken = task_of[by_name["flaky"]], task_of[by_name["broken"]]
    views = {t.id: t for t in client.tasks(net)}
    assert (views[flaky].attempts, views[broken].attempts) == (3, 1), views
    errors = client.task_errors(net)
    assert sorted((e.task, e.attempt) for e in errors) == sorted(
        [(flaky, 1), (flaky, 2), (flaky, 3), (broken, 1)]
    )
    assert all(unique in e.traceback and e.outcome == "failed" for e in errors)
    assert {e.task for e in client.task_errors(scope="org-camp-p") if unique in e.traceback} == {flaky, broken}
    retried = client.task_history(network=net, retried=True)
    assert [h.task for h in retried] == [flaky]
    assert client.remove_restart_policies(net, ["^transient"]) == []
    change = client.restart_tasks(net, reason="try again")
    assert sorted(a.task for a in change.tasks) == sorted([flaky, broken])
    assert all(a.result == "waiting" for a in change.tasks)
    assert client.watch(net, interval=0.2, timeout=90, progress=False) == {"error": 2}
    assert client.task(broken).attempts == 2


def test_task_logs_follow_prints_each_line_once(client: Client, unique: str) -> None:
    script = f"for i in 1 2 3; do echo {unique} line $i; sleep 0.7; done"
    network = {
        "name": unique,
        "transformations": [{"name": "talk", "protocol": "exec", "inputs": {"command": ["sh", "-c", script]}}],
    }
    net = client.submit_network(network, scope="org-camp-p")
    [created] = client.create_tasks(net)
    followed = "".join(client.task_logs(created.task, follow=True))
    whole = client.task_logs(created.task)
    for i in (1, 2, 3):
        assert followed.count(f"{unique} line {i}") == 1
        assert whole.count(f"{unique} line {i}") == 1
    with pytest.raises(NotFound):
        client.task_logs(created.task, attempt=5)


def test_scope_isolation_looks_like_absence(client: Client, other: Client, unique: str) -> None:
    net = client.submit_network(echo_network(unique, 1), scope="org-camp-p")
    [created] = client.create_tasks(net)
    client.watch(net, interval=0.2, timeout=60, progress=False)
    [result] = list(client.results(net))
    for attempt in (
        lambda: other.network(net),
        lambda: other.network_status(net),
        lambda: other.transformations(net),
        lambda: other.task(created.task),
        lambda: other.action_tasks(net, [created.task]),
        lambda: other.set_weight(net, 0),
        lambda: other.read_result(result),
        lambda: other.result(result.result),
        lambda: other.task_results(created.task),
        lambda: list(other.results(net)),
        lambda: other.download_results(net, "/nonexistent-never-written", cache_dir=False),
    ):
        with pytest.raises(NotFound) as caught:
            attempt()
        assert caught.value.code == "not_found" and unique not in caught.value.message
    assert net.key not in {n.key for n in other.networks()}
    assert other.tasks(net) == []
    assert other.task_history([created.task])[0].detail is None
    with pytest.raises(Forbidden):
        other.submit_network(echo_network(unique, 1), scope="org-camp-p")
    assert client.network(net).weight != 0


# -- downloads ---------------------------------------------------------------------------------


class Interrupted(Exception):
    pass


def test_download_interrupted_and_resumed_shares_the_cache_with_the_cli(
    client: Client, unique: str, tmp_path: Path, athanor_cli
) -> None:
    net = client.submit_network(echo_network(unique, 40, lambda i: {"i": i, "network": unique, "pad": "x" * i}), scope="org-camp-p")
    client.create_tasks(net)
    client.watch(net, interval=0.2, timeout=90, progress=False)
    folder, cache = tmp_path / "out", tmp_path / "cache"

    def stop_after_ten(progress) -> None:
        if progress.done == 10:
            raise Interrupted

    with pytest.raises(Interrupted):
        client.download_results(net, folder, cache_dir=cache, progress=stop_after_ten)
    kept = [p for p in folder.iterdir() if not p.name.endswith(".partial")]
    assert 10 <= len(kept) < 40
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial")]
    assert not (folder / "index.json").exists()

    resumed = client.download_results(net, folder, cache_dir=cache)
    assert (resumed.total, resumed.present, resumed.downloaded) == (40, len(kept), 40 - len(kept))
    inputs = {t.key: t.inputs for t in client.transformations(net)}
    for key, value in inputs.items():
        assert json.loads((folder / key).read_text()) == value

    # A file cut short is fetched again; a damaged cache entry is not trusted.
    damaged = net.transformations[3]
    (folder / damaged).write_text("cut")
    again = client.download_results(net, folder, cache_dir=cache)
    assert (again.present, again.from_cache, again.downloaded) == (39, 1, 0)
    assert json.loads((folder / damaged).read_text()) == inputs[damaged]

    # The CLI fills another folder from the cache the client wrote, and writes the same index.
    cli_folder = tmp_path / "cli"
    done = athanor_cli("result", "download", "--network", net.key, str(cli_folder), "--cache-dir", str(cache), "--json")
    assert json.loads(done.stdout)["fromCache"] == 40
    assert (cli_folder / "index.json").read_bytes() == (folder / "index.json").read_bytes()
    for key in inputs:
        assert (cli_folder / key).read_bytes() == (folder / key).read_bytes()


# -- maintenance: 503 with Retry-After ---------------------------------------------------------


def test_writes_in_maintenance_are_retried_until_it_ends(client: Client, unique: str, athanor_cli) -> None:
    net = client.submit_network(echo_network(unique, 1), scope="org-camp-p", state="inactive")
    athanor_cli("maintenance", "on", "--reason", f"python test {unique}")
    try:
        impatient = Client(retry_for=0)
        deadline = time.monotonic() + 30
        while True:  # every server follows within about a second
            try:
                impatient.set_weight(net, 0.4)
            except Maintenance as error:
                assert unique in error.message and error.status == 503
                assert_clean(error)
                break
            assert time.monotonic() < deadline, "maintenance mode never reached the server"
            time.sleep(0.2)
        retries: list[tuple[str, float, str]] = []
        patient = Client(max_retry_wait=0.3, on_retry=lambda name, wait, e: retries.append((name, wait, e.code)))
        threading.Timer(2.0, lambda: athanor_cli("maintenance", "off")).start()
        assert patient.set_weight(net, 0.6).weight == 0.6
        assert len(retries) >= 2
        assert {(name, code) for name, _, code in retries} == {("set_network_weight", "maintenance")}
        assert all(0 < wait <= 0.3 for _, wait, _ in retries)
    finally:
        athanor_cli("maintenance", "off")


class CuttingProxy:
    """A TCP relay to the server that drops a connection once it has relayed ``cut_after`` bytes
    of answers: a download broken off mid-stream, as a flaky network or a proxy restart does."""

    def __init__(self, target: str, cut_after: int) -> None:
        host, port = target.removeprefix("http://").rstrip("/").split(":")
        self.target = (host, int(port))
        self.cut_after = cut_after
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(downstream, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, downstream, self.cut_after), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        relayed = 0
        try:
            while chunk := source.recv(65536):
                if limit is not None and relayed + len(chunk) > limit:
                    sink.sendall(chunk[: limit - relayed])
                    self.cuts += 1
                    break
                sink.sendall(chunk)
                relayed += len(chunk)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.listener.close()


def test_a_download_cut_off_mid_stream_leaves_no_partial_and_resumes(
    client: Client, unique: str, tmp_path: Path
) -> None:
    size = 6 * 1024 * 1024
    network = {
        "name": unique,
        "transformations": [
            {"name": "big", "protocol": "exec", "inputs": {"command": ["head", "-c", str(size), "/dev/zero"], "n": unique}}
        ],
    }
    net = client.submit_network(network, scope="org-camp-p")
    client.create_tasks(net)
    assert client.watch(net, interval=0.2, timeout=90, progress=False) == {"complete": 1}
    [listed] = list(client.results(net))
    assert listed.size_bytes == size
    folder = tmp_path / "out"
    proxy = CuttingProxy(client.url, cut_after=2 * 1024 * 1024)
    try:
        with Client(proxy.url, retry_for=0) as flaky, pytest.raises(ServerUnreachable) as caught:
            flaky.download_results(net, folder, cache_dir=tmp_path / "cache")
    finally:
        proxy.close()
    assert proxy.cuts >= 1
    assert_clean(caught.value)
    assert sorted(p.name for p in folder.iterdir()) == []  # neither a partial nor a short file
    resumed = client.download_results(net, folder, cache_dir=tmp_path / "cache")
    assert (resumed.downloaded, resumed.bytes_downloaded) == (1, size)
    assert hashlib.sha256((folder / listed.transformation).read_bytes()).hexdigest() == listed.sha256
