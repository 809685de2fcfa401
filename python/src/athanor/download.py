"""Downloading every result of a network into a folder, resumable, through a local cache.

The folder and the cache have the same layout as the CLI's ``athanor result download`` (and the
TypeScript client's), so the two share a cache and can resume each other's downloads:

- ``<folder>/<transformation key>``: the result's bytes; ``<folder>/index.json``: one entry per
  transformation (the server's listing, each with ``file``), written last;
- ``<cache>/<sha256[:2]>/<sha256>``: content-addressed bytes, least recently used trimmed first;
- downloads land in ``<file>.<8 hex>.partial`` and are renamed into place only once their
  sha256 matches; a cache entry is checked the same way before it is used.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ChecksumMismatch
from .models import DownloadSummary

if TYPE_CHECKING:
    from ._http import Transport

_chunk_bytes = 1024 * 1024
#: Results per page of the network's listing (the server's largest page).
_page = 10_000


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/athanor/results``, else ``~/.cache/athanor/results`` (as the CLI)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "athanor" / "results"


@dataclass(frozen=True)
class DownloadProgress:
    done: int
    total: int
    bytes_downloaded: int


def _sha256_of(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return _digest(f)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _digest(f: Any) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(_chunk_bytes), b""):
        h.update(chunk)
    return h.hexdigest()


def _holds(path: Path, sha256: str) -> bool:
    return _sha256_of(path) == sha256


def _cache_path(cache: Path, sha256: str) -> Path:
    return cache / sha256[:2] / sha256


def trim_cache(cache: Path, max_bytes: int) -> None:
    """Removes the least recently used entries until the cache fits ``max_bytes``."""
    entries: list[tuple[float, int, Path]] = []
    try:
        prefixes = list(cache.iterdir())
    except FileNotFoundError:
        return
    for prefix in prefixes:
        try:
            names = list(prefix.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            continue
        for path in names:
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            if path.is_file():
                entries.append((info.st_mtime, info.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        path.unlink(missing_ok=True)
        total -= size


def list_results(http: Transport, network: str, outcome: str) -> list[dict[str, Any]]:
    """Every result of the network as the server lists it (wire JSON), page by page."""
    everything: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = http.json(
            "network_results",
            {"key": network},
            query={"outcome": outcome, "limit": _page, "after": after},
        )
        everything.extend(page)
        if len(page) < _page or not page:
            return everything
        after = page[-1]["transformation"]


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.downloaded = 0
        self.from_cache = 0
        self.present = 0
        self.bytes_downloaded = 0


def _fetch_one(
    http: Transport,
    entry: dict[str, Any],
    folder: Path,
    cache: Path | None,
    counters: _Counters,
    stop: threading.Event,
) -> None:
    if stop.is_set():
        return
    sha256: str = entry["sha256"]
    target = folder / entry["transformation"]
    if _holds(target, sha256):
        with counters.lock:
            counters.present += 1
        return
    cached = _cache_path(cache, sha256) if cache is not None else None
    if cached is not None and _holds(cached, sha256):
        os.utime(cached)
        partial = target.with_name(f"{target.name}.partial")
        shutil.copyfile(cached, partial)
        os.replace(partial, target)
        with counters.lock:
            counters.from_cache += 1
        return
    partial = target.with_name(f"{target.name}.{secrets.token_hex(4)}.partial")
    try:
        digest = hashlib.sha256()
        with http.stream("download_result", {"id": entry["result"]}) as response, open(
            partial, "wb"
        ) as out:
            # As the chunks arrive: re-chunking them would copy every byte once more.
            for chunk in response.iter_bytes():
                digest.update(chunk)
                out.write(chunk)
                with counters.lock:
                    counters.bytes_downloaded += len(chunk)
        got = digest.hexdigest()
        if got != sha256:
            raise ChecksumMismatch(
                "checksum_mismatch",
                f"result {entry['result']} arrived with sha256 {got}, not {sha256}: run again",
            )
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cache_partial = cached.with_name(f"{cached.name}.{secrets.token_hex(4)}.partial")
            shutil.copyfile(partial, cache_partial)
            os.replace(cache_partial, cached)
        os.replace(partial, target)
        with counters.lock:
            counters.downloaded += 1
    finally:
        partial.unlink(missing_ok=True)


def download_network_results(
    http: Transport,
    network: str,
    folder: str | os.PathLike[str],
    *,
    outcome: str = "ok",
    concurrency: int = 4,
    cache_dir: str | os.PathLike[str] | None | bool = None,
    cache_max_bytes: int = 1024**3,
    on_progress: Callable[[DownloadProgress], None] | None = None,
) -> DownloadSummary:
    entries = [e for e in list_results(http, network, outcome) if e.get("sha256") is not None]
    target = Path(folder)
    cache: Path | None
    if cache_dir is False:
        cache = None
    elif cache_dir is None or cache_dir is True:
        cache = default_cache_dir()
    else:
        cache = Path(cache_dir)
    target.mkdir(parents=True, exist_ok=True)
    counters = _Counters()
    stop = threading.Event()
    done = 0
    # Progress is reported on the caller's thread, so a callback (or Ctrl-C) that raises stops
    # the run cleanly: nothing more starts, and what is running finishes or removes its partial.
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures: Iterable[concurrent.futures.Future[None]] = [
            pool.submit(_fetch_one, http, e, target, cache, counters, stop) for e in entries
        ]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
                done += 1
                if on_progress is not None:
                    on_progress(DownloadProgress(done, len(entries), counters.bytes_downloaded))
        except BaseException:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    if cache is not None:
        trim_cache(cache, cache_max_bytes)
    index = target / "index.json"
    partial_index = target / "index.json.partial"
    listed = [{**e, "file": e["transformation"]} for e in entries]
    partial_index.write_text(json.dumps(listed, indent=2, ensure_ascii=False) + "\n", "utf-8")
    os.replace(partial_index, index)
    return DownloadSummary(
        total=len(entries),
        downloaded=counters.downloaded,
        from_cache=counters.from_cache,
        present=counters.present,
        bytes_downloaded=counters.bytes_downloaded,
        index=str(index),
    )
