"""The resources and subresources kube-apiserver itself serves, per API group and version.

A policy's ``resources`` strings are compared exactly with the request's resource and
subresource, so a name no built-in API serves (``secret``, ``Pods``, ``pods/logs``) never
matches. The table below lists every name in every group served by kube-apiserver 1.20-1.37,
alpha and beta versions included (they can be switched on with ``--runtime-config``), with the
release that added it (``@1.26``) or the range it was served in (``@1.20-1.24``). Groups not in
the table (custom resources, aggregated APIs such as metrics.k8s.io) are never judged.

Sources and caveats: docs/policy-lints.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pytest_kaudit.policy.versions import NEWEST, OLDEST, Version, format_version

_TABLE: dict[str, str] = {
    "": """
        bindings componentstatuses configmaps endpoints events limitranges
        namespaces namespaces/finalize namespaces/status
        nodes nodes/proxy nodes/status
        persistentvolumeclaims persistentvolumeclaims/status
        persistentvolumes persistentvolumes/status
        pods pods/attach pods/binding pods/ephemeralcontainers pods/eviction pods/exec pods/log
        pods/portforward pods/proxy pods/status pods/resize@1.33 pods/checkpoint@1.37
        podtemplates
        replicationcontrollers replicationcontrollers/scale replicationcontrollers/status
        resourcequotas resourcequotas/status secrets serviceaccounts serviceaccounts/token
        services services/proxy services/status
    """,
    "admissionregistration.k8s.io": """
        mutatingwebhookconfigurations validatingwebhookconfigurations
        validatingadmissionpolicies@1.26 validatingadmissionpolicies/status@1.26
        validatingadmissionpolicybindings@1.26
        mutatingadmissionpolicies@1.32 mutatingadmissionpolicybindings@1.32
    """,
    "apiextensions.k8s.io": "customresourcedefinitions customresourcedefinitions/status",
    "apiregistration.k8s.io": "apiservices apiservices/status",
    "apps": """
        controllerrevisions daemonsets daemonsets/status
        deployments deployments/scale deployments/status
        replicasets replicasets/scale replicasets/status
        statefulsets statefulsets/scale statefulsets/status
    """,
    "authentication.k8s.io": "tokenreviews selfsubjectreviews@1.26",
    "authorization.k8s.io": """
        localsubjectaccessreviews selfsubjectaccessreviews selfsubjectrulesreviews
        subjectaccessreviews
    """,
    "autoscaling": "horizontalpodautoscalers horizontalpodautoscalers/status",
    "batch": "cronjobs cronjobs/status jobs jobs/status",
    "certificates.k8s.io": """
        certificatesigningrequests certificatesigningrequests/approval
        certificatesigningrequests/status clustertrustbundles@1.27
        podcertificaterequests@1.34 podcertificaterequests/status@1.34
    """,
    "coordination.k8s.io": "leases leasecandidates@1.31",
    "discovery.k8s.io": "endpointslices",
    "events.k8s.io": "events",
    "extensions": "ingresses@1.20-1.21 ingresses/status@1.20-1.21",
    "flowcontrol.apiserver.k8s.io": """
        flowschemas flowschemas/status
        prioritylevelconfigurations prioritylevelconfigurations/status
    """,
    "internal.apiserver.k8s.io": "storageversions storageversions/status",
    "networking.k8s.io": """
        ingressclasses ingresses ingresses/status networkpolicies networkpolicies/status@1.24
        clustercidrs@1.25-1.28 ipaddresses@1.27 servicecidrs@1.29 servicecidrs/status@1.29
    """,
    "node.k8s.io": "runtimeclasses",
    "policy": """
        poddisruptionbudgets poddisruptionbudgets/status podsecuritypolicies@1.20-1.24
    """,
    "rbac.authorization.k8s.io": "clusterrolebindings clusterroles rolebindings roles",
    "resource.k8s.io": """
        podschedulings@1.26-1.26 podschedulings/status@1.26-1.26
        podschedulingcontexts@1.27 podschedulingcontexts/status@1.27
        resourceclaims@1.26 resourceclaims/status@1.26 resourceclaimtemplates@1.26
        resourceclasses@1.26-1.30 resourceclaimparameters@1.30-1.30
        resourceclassparameters@1.30-1.30 resourceslices@1.30 deviceclasses@1.31
        devicetaintrules@1.33 devicetaintrules/status@1.36
        resourcepoolstatusrequests@1.36 resourcepoolstatusrequests/status@1.36
    """,
    "scheduling.k8s.io": """
        priorityclasses workloads@1.35 podgroups@1.35 podgroups/status@1.35
        compositepodgroups@1.35 compositepodgroups/status@1.35
    """,
    "storage.k8s.io": """
        csidrivers csinodes csistoragecapacities storageclasses
        volumeattachments volumeattachments/status volumeattributesclasses@1.29
    """,
    "storagemigration.k8s.io": """
        storageversionmigrations@1.30 storageversionmigrations/status@1.30
    """,
}

#: Names RBAC knows but no request to kube-apiserver carries, with why.
AUTHORIZATION_ONLY: dict[tuple[str, str], str] = {
    **{("", f"nodes/{sub}"): "the kubelet checks it with a SubjectAccessReview; kubelet API "
       "calls are not kube-apiserver requests, so they are never audited here"
       for sub in ("metrics", "stats", "log", "spec", "pods", "configz", "healthz",
                   "checkpoint")},
    ("", "users"): "it exists only for RBAC's impersonate verb",
    ("", "groups"): "it exists only for RBAC's impersonate verb",
    ("authentication.k8s.io", "uids"): "it exists only for RBAC's impersonate verb",
    ("authentication.k8s.io", "userextras"): "it exists only for RBAC's impersonate verb",
    ("certificates.k8s.io", "signers"): "it exists only for RBAC's approve, sign and attest "
    "verbs",
}


@dataclass(frozen=True)
class Served:
    """The releases in which a built-in resource name is served (inclusive range)."""

    first: Version
    last: Version

    def covers(self, version: Version) -> bool:
        """Whether ``version`` serves it."""
        return self.first <= version <= self.last

    def describe(self) -> str:
        """``"added in 1.26"``, ``"removed in 1.25"`` or ``"served in 1.26 only"``."""
        if self.first == self.last:
            return f"served in {format_version(self.first)} only"
        if self.last < NEWEST:
            return f"removed in {format_version((self.last[0], self.last[1] + 1))}"
        return f"added in {format_version(self.first)}"


def _parse(spec: str) -> Served:
    if not spec:
        return Served(OLDEST, NEWEST)
    first, _, last = spec.partition("-")
    parse = _release
    return Served(parse(first), parse(last) if last else NEWEST)


def _release(text: str) -> Version:
    major, minor = text.split(".")
    return (int(major), int(minor))


@cache
def _names() -> dict[str, dict[str, Served]]:
    table: dict[str, dict[str, Served]] = {}
    for group, text in _TABLE.items():
        entries = table.setdefault(group, {})
        for token in text.split():
            name, _, spec = token.partition("@")
            entries[name] = _parse(spec)
    return table


def is_builtin_group(group: str) -> bool:
    """Whether kube-apiserver serves ``group`` itself in some modelled release."""
    return group in _names()


def served(group: str, name: str) -> Served | None:
    """When ``name`` (``pods`` or ``pods/log``) is served in ``group``; None if never."""
    return _names().get(group, {}).get(name)


@cache
def names_at(group: str, version: Version) -> frozenset[str]:
    """Every resource and ``resource/subresource`` name ``group`` serves in ``version``."""
    return frozenset(
        name for name, when in _names().get(group, {}).items() if when.covers(version)
    )


def subresources_at(group: str, version: Version) -> frozenset[str]:
    """The subresource names (``log``, ``scale``...) of any resource in ``group``."""
    return frozenset(n.split("/", 1)[1] for n in names_at(group, version) if "/" in n)


def groups_serving(name: str) -> tuple[str, ...]:
    """The built-in groups that serve ``name`` in some release (for "wrong group" hints)."""
    return tuple(group for group, names in _names().items() if name in names)
