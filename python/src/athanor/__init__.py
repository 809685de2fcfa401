"""Athanor's Python client: ``from athanor import Client``.

>>> c = Client("https://athanor.example.org", "alice", key)   # or ATHANOR_URL/ID/KEY
>>> net = c.submit_network("network.json", scope="org-campaign-project")
>>> c.create_tasks(net)                                        # and action them on its hub
>>> c.watch(net)
>>> c.download_results(net, "results/")
"""

from .client import DEFAULT_URL, SETTLED, Client, read_network_file
from .download import DownloadProgress, default_cache_dir
from .errors import (
    AthanorError,
    ChecksumMismatch,
    Conflict,
    Forbidden,
    InternalError,
    InvalidArgument,
    Maintenance,
    NotFound,
    RateLimited,
    ServerUnreachable,
    TimedOut,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from .models import (
    Attempt,
    BulkAnswer,
    CreatedTask,
    DownloadSummary,
    Failure,
    HubTask,
    Network,
    NetworkResult,
    NetworkStateAnswer,
    Progress,
    RestartPolicy,
    Result,
    StatusChange,
    Submitted,
    Task,
    TaskDetail,
    TaskHistory,
    Transformation,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "SETTLED",
    "AthanorError",
    "Attempt",
    "BulkAnswer",
    "ChecksumMismatch",
    "Client",
    "Conflict",
    "CreatedTask",
    "DownloadProgress",
    "DownloadSummary",
    "Failure",
    "Forbidden",
    "HubTask",
    "InternalError",
    "InvalidArgument",
    "Maintenance",
    "Network",
    "NetworkResult",
    "NetworkStateAnswer",
    "NotFound",
    "Progress",
    "RateLimited",
    "RestartPolicy",
    "Result",
    "ServerUnreachable",
    "StatusChange",
    "Submitted",
    "Task",
    "TaskDetail",
    "TaskHistory",
    "TimedOut",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "Transformation",
    "default_cache_dir",
    "read_network_file",
]
