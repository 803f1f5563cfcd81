"""The resources whose request and response bodies hold confidential data.

Logging these at Request or RequestResponse copies that data into the audit log; the CIS
Kubernetes Benchmark's audit-policy control asks for no more than Metadata on Secrets,
ConfigMaps and TokenReviews for that reason. A TokenRequest
(``serviceaccounts/token``) answers with a bearer token. Lints warn on them, ``kaudit diff``
flags changes that start logging their bodies, the request space always includes them, and
redaction drops the bodies of those that carry credentials.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SensitiveResource:
    """One resource (``group`` "" = core) and what its bodies hold."""

    group: str
    resource: str
    subresource: str
    label: str
    #: Bodies carry credentials (Secret values, tokens): redaction drops them whole.
    credentials: bool

    @property
    def key(self) -> tuple[str, str, str]:
        """``(api_group, resource, subresource)``, as an event's ``objectRef`` names it."""
        return (self.group, self.resource, self.subresource)


SENSITIVE_RESOURCES: tuple[SensitiveResource, ...] = (
    SensitiveResource("", "secrets", "", "Secrets", credentials=True),
    SensitiveResource("", "configmaps", "", "ConfigMaps", credentials=False),
    SensitiveResource("authentication.k8s.io", "tokenreviews", "", "TokenReviews",
                      credentials=True),
    SensitiveResource("", "serviceaccounts", "token", "serviceaccounts/token (TokenRequests)",
                      credentials=True),
)

#: The ``(api_group, resource, subresource)`` of every sensitive resource, in the order above.
SENSITIVE_KEYS: tuple[tuple[str, str, str], ...] = tuple(r.key for r in SENSITIVE_RESOURCES)
#: Those whose bodies carry credentials.
CREDENTIAL_KEYS: frozenset[tuple[str, str, str]] = frozenset(
    r.key for r in SENSITIVE_RESOURCES if r.credentials
)
