"""Which resources an apiserver serves, for the "no gap" check: from the server or a snapshot.

The real run reads the server's discovery documents (``/api``, ``/apis`` and each group's
preferred version). Offline predictions use a snapshot of kube-apiserver 1.20's discovery
shipped with the package (``packs/discovery-1.20.json``), so both see the same resources on
the local backend.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from pytest_kaudit.traffic import Identity, RequestSpec

if TYPE_CHECKING:
    from pytest_kaudit.traffic import TrafficSession

SNAPSHOT = "discovery-1.20.json"
GAP_USER = Identity.human("alice", ("kaudit:engineers",))
GAP_NAMESPACE = "kaudit-check-a"


@dataclass(frozen=True)
class Target:
    """One creatable top-level resource."""

    group: str
    version: str
    resource: str
    namespaced: bool


def load_snapshot() -> list[Target]:
    """The packaged discovery snapshot (empty if the package lacks it)."""
    try:
        text = resources.files("pytest_kaudit.compliance.packs").joinpath(SNAPSHOT).read_text()
    except (FileNotFoundError, OSError):
        return []
    return [Target(**item) for item in json.loads(text)]


def dump_snapshot(targets: list[Target]) -> str:
    """Targets as the snapshot's JSON text."""
    return json.dumps([asdict(t) for t in targets], indent=1) + "\n"


def _get(session: TrafficSession, path: str) -> Any:
    api = session.kaudit.client
    resp = api.rest_client.request(  # type: ignore[no-untyped-call]
        "GET", session.handle.server + path, headers={"Accept": "application/json"})
    if resp.status != 200:
        raise RuntimeError(f"discovery GET {path} answered {resp.status}")
    return json.loads(resp.read())


def _from_list(doc: Any, group: str, version: str) -> list[Target]:
    out = []
    for item in doc.get("resources", []):
        name = item.get("name", "")
        if "/" in name or "create" not in item.get("verbs", []):
            continue
        out.append(Target(group, version, name, bool(item.get("namespaced"))))
    return out


def server_targets(session: TrafficSession) -> list[Target]:
    """Every creatable top-level resource the server's discovery lists (preferred versions)."""
    targets: list[Target] = []
    for version in _get(session, "/api").get("versions", []):
        targets += _from_list(_get(session, f"/api/{version}"), "", version)
    for group in _get(session, "/apis").get("groups", []):
        preferred = (group.get("preferredVersion") or {}).get("version")
        if not preferred:
            continue
        doc = _get(session, f"/apis/{group['name']}/{preferred}")
        targets += _from_list(doc, group["name"], preferred)
    return sorted(targets, key=lambda t: (t.group, t.resource))


def gap_specs(targets: list[Target]) -> list[tuple[Target, RequestSpec]]:
    """One create by a human user per target."""
    return [(t, RequestSpec(verb="create", resource=t.resource, group=t.group,
                            version=t.version, namespace=GAP_NAMESPACE if t.namespaced else "",
                            name="kaudit-gap", identity=GAP_USER)) for t in targets]
