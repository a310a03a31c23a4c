"""Admin: what exists and who holds what (baton.v1.Admin).

    for r in await client.ls("billing/"):
        print(r.name, r.kind, r.holders, r.waiters)
    d = await client.describe("billing/migrate")     # holders, waiters, state

RPCs: ls -> Admin/List (every page), describe -> Admin/Describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Optional, overload

from .errors import NotFoundError
from .v1 import admin_pb2, common_pb2

if TYPE_CHECKING:
    from .client import Client

KINDS: dict[str, "common_pb2.ResourceKind"] = {
    "lock": common_pb2.RESOURCE_KIND_LOCK,
    "semaphore": common_pb2.RESOURCE_KIND_SEMAPHORE,
    "event": common_pb2.RESOURCE_KIND_EVENT,
    "queue": common_pb2.RESOURCE_KIND_QUEUE,
    "future": common_pb2.RESOURCE_KIND_FUTURE,
    "barrier": common_pb2.RESOURCE_KIND_BARRIER,
    "timer": common_pb2.RESOURCE_KIND_TIMER,
    "tasks": common_pb2.RESOURCE_KIND_TASKS,
}
_KIND_NAMES: dict[int, str] = {v: k for k, v in KINDS.items()}


def kind_name(kind: int) -> str:
    """"lock", "semaphore", ... for a ResourceKind value."""
    return _KIND_NAMES.get(kind, "unspecified")


@dataclass(frozen=True)
class ResourceSummary:
    """One line of Admin/List."""

    name: str
    kind: str
    holders: int
    waiters: int


async def ls(client: "Client", prefix: str = "", *, kind: Optional[str] = None, page_size: int = 0) -> list[ResourceSummary]:
    """Admin/List: live resources in name order, under `prefix`, of one
    `kind` ("lock", "semaphore", "event", "queue", "future", "barrier",
    "timer", "tasks") or all; follows every page."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
    out: list[ResourceSummary] = []
    token = ""
    while True:
        req = admin_pb2.ListRequest(
            prefix=prefix,
            kind=KINDS[kind] if kind else common_pb2.RESOURCE_KIND_UNSPECIFIED,
            page_size=page_size,
            page_token=token,
        )
        resp = await client._rpc.call("admin.List", req)
        out.extend(ResourceSummary(r.name, kind_name(r.kind), r.holders, r.waiters) for r in resp.resources)
        token = resp.next_page_token
        if not token:
            return out


@overload
async def describe(
    client: "Client", name: str, *, missing_ok: Literal[False] = False
) -> admin_pb2.DescribeResponse: ...
@overload
async def describe(client: "Client", name: str, *, missing_ok: bool) -> Optional[admin_pb2.DescribeResponse]: ...
async def describe(client: "Client", name: str, *, missing_ok: bool = False) -> Optional[admin_pb2.DescribeResponse]:
    """Admin/Describe: the resource's holders, waiters and state (the
    DescribeResponse message of proto/baton/v1/admin.proto). Raises
    NotFoundError for a resource that does not exist (never used, or
    reclaimed because idle), or returns None with missing_ok=True."""
    try:
        return await client._rpc.call("admin.Describe", admin_pb2.DescribeRequest(name=name))
    except NotFoundError:
        if missing_ok:
            return None
        raise
