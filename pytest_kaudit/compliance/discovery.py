"""Which resources an apiserver serves, for the "no gap" check: from the server or a snapshot.

The real run reads the server's discovery documents (``/api``, ``/apis`` and every version
of each group, the preferred one first). Offline predictions use a snapshot of
kube-apiserver 1.20's discovery shipped with the package (``packs/discovery-1.20.json``), so
both see the same resources on the local backend.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from pytest_kaudit.traffic import Identity, RequestSpec, default_object

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
    kind: str = ""


def load_snapshot() -> list[Target]:
    """The packaged discovery snapshot (empty if the package lacks it)."""
    try:
        text = resources.files("pytest_kaudit.compliance.packs").joinpath(SNAPSHOT).read_text()
    except OSError:
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
        out.append(Target(group, version, name, bool(item.get("namespaced")),
                          str(item.get("kind", ""))))
    return out


def server_targets(session: TrafficSession) -> list[Target]:
    """Every creatable top-level resource the server's discovery lists, once per group and
    resource: in the group's preferred version, else the first version that serves it."""
    found: dict[tuple[str, str], Target] = {}

    def add(targets: list[Target]) -> None:
        for t in targets:
            found.setdefault((t.group, t.resource), t)

    for version in _get(session, "/api").get("versions", []):
        add(_from_list(_get(session, f"/api/{version}"), "", version))
    for group in _get(session, "/apis").get("groups", []):
        preferred = (group.get("preferredVersion") or {}).get("version")
        versions = [v["version"] for v in group.get("versions", []) if v.get("version")]
        for version in sorted(versions, key=lambda v: v != preferred):
            add(_from_list(_get(session, f"/apis/{group['name']}/{version}"), group["name"],
                           version))
    return sorted(found.values(), key=lambda t: (t.group, t.resource))


def gap_specs(targets: list[Target]) -> list[tuple[Target, RequestSpec]]:
    """One create by a human user per target, with an object of the target's kind."""
    out = []
    for t in targets:
        namespace = GAP_NAMESPACE if t.namespaced else ""
        body = default_object(t.group, t.version, t.resource, "kaudit-gap", namespace,
                              kind=t.kind or None)
        out.append((t, RequestSpec(verb="create", resource=t.resource, group=t.group,
                                   version=t.version, namespace=namespace, name="kaudit-gap",
                                   identity=GAP_USER, body=body)))
    return out


def main() -> None:
    """Regenerate the snapshot from a local control plane: ``python -m
    pytest_kaudit.compliance.discovery > packs/discovery-1.20.json``."""
    from pytest_kaudit.backends.base import ClusterSpec
    from pytest_kaudit.backends.local import LocalBackend
    from pytest_kaudit.policy import Policy
    from pytest_kaudit.traffic import TrafficSession

    backend = LocalBackend()
    policy = Policy.from_dict({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                               "rules": [{"level": "Metadata"}]})
    handle = backend.start(ClusterSpec(policy=policy))
    try:
        with TrafficSession(handle, policy) as session:
            print(dump_snapshot(server_targets(session)), end="")
    finally:
        backend.stop(handle)


if __name__ == "__main__":
    main()
