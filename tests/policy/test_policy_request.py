"""Request -> attributes: the requestinfo.go table, field selectors, long-running rule."""

from __future__ import annotations

import pytest

from pytest_kaudit.policy import RequestAttributes

# method, path, verb, group, namespace, resource, subresource, name
TABLE = [
    ("GET", "/api/v1/namespaces", "list", "", "", "namespaces", "", ""),
    ("GET", "/api/v1/namespaces/other", "get", "", "other", "namespaces", "", "other"),
    ("GET", "/api/v1/namespaces/other/pods", "list", "", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods/foo", "get", "", "other", "pods", "", "foo"),
    ("HEAD", "/api/v1/namespaces/other/pods/foo", "get", "", "other", "pods", "", "foo"),
    ("GET", "/api/v1/pods", "list", "", "", "pods", "", ""),
    ("HEAD", "/api/v1/pods", "list", "", "", "pods", "", ""),
    ("GET", "/api/v1/proxy/namespaces/other/pods/foo", "proxy", "", "other", "pods", "", "foo"),
    ("GET", "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource", "proxy", "",
     "other", "pods", "", "foo"),
    ("GET", "/api/v1/watch/pods", "watch", "", "", "pods", "", ""),
    ("GET", "/api/v1/pods?watch=true", "watch", "", "", "pods", "", ""),
    ("GET", "/api/v1/pods?watch=false", "list", "", "", "pods", "", ""),
    ("GET", "/api/v1/watch/namespaces/other/pods", "watch", "", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods?watch=0", "list", "", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods?watch=", "watch", "", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods?watch=FALSE", "list", "", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods/foo/status", "get", "", "other", "pods", "status",
     "foo"),
    ("GET", "/api/v1/namespaces/other/pods/foo/proxy/subpath", "get", "", "other", "pods",
     "proxy", "foo"),
    ("PUT", "/api/v1/namespaces/other/finalize", "update", "", "other", "namespaces",
     "finalize", "other"),
    ("PUT", "/api/v1/namespaces/other/status", "update", "", "other", "namespaces", "status",
     "other"),
    ("PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "", "other", "pods", "", "foo"),
    ("DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "", "other", "pods", "", "foo"),
    ("POST", "/api/v1/namespaces/other/pods", "create", "", "other", "pods", "", ""),
    ("DELETE", "/api/v1/nodes", "deletecollection", "", "", "nodes", "", ""),
    ("DELETE", "/api/v1/namespaces", "deletecollection", "", "", "namespaces", "", ""),
    ("DELETE", "/apis/extensions/v1/namespaces/other/pods", "deletecollection", "extensions",
     "other", "pods", "", ""),
    ("POST", "/apis/extensions/v1beta3/namespaces/other/pods", "create", "extensions", "other",
     "pods", "", ""),
    ("POST", "/api/v1/namespaces", "create", "", "", "namespaces", "", ""),
    ("OPTIONS", "/api/v1/pods", "", "", "", "pods", "", ""),
]


@pytest.mark.parametrize(("method", "path", "verb", "group", "ns", "resource", "sub", "name"),
                         TABLE)
def test_requestinfo_table(method: str, path: str, verb: str, group: str, ns: str, resource: str,
                           sub: str, name: str) -> None:
    a = RequestAttributes.from_http(method, path)
    assert a.is_resource_request
    assert (a.verb, a.api_group, a.namespace, a.resource, a.subresource, a.name) == (
        verb, group, ns, resource, sub, name
    )
    assert a.path == path.split("?")[0]


def test_api_version_and_user() -> None:
    a = RequestAttributes.from_http("POST", "/apis/extensions/v1beta3/namespaces/other/pods",
                                    user="alice", groups=["g"])
    assert (a.api_version, a.user, a.groups) == ("v1beta3", "alice", ("g",))


@pytest.mark.parametrize(
    ("query", "verb", "name"),
    [
        ("", "list", ""),
        ("?fieldSelector=metadata.name=name1", "list", "name1"),
        ("?watch=true&fieldSelector=metadata.name=name1", "watch", "name1"),
        ("?fieldSelector=foo=bar", "list", ""),
        ("?fieldSelector=metadata.name=name1,foo", "list", ""),
        ("?fieldSelector=metadata.name=name1,foo&watch=true", "watch", ""),
        ("?fieldSelector=metadata.name=name1,foo&watch=false", "list", ""),
        ("?fieldSelector=metadata.name==name1,spec.x=y", "list", "name1"),
        ("?fieldSelector=metadata.name!=name1", "list", ""),
        ("?fieldSelector=metadata.name=name1&limit=abc", "list", ""),
    ],
)
def test_field_selector_name(query: str, verb: str, name: str) -> None:
    a = RequestAttributes.from_http("GET", "/apis/group/version/resource" + query)
    assert (a.verb, a.name) == (verb, name)


@pytest.mark.parametrize(
    ("method", "path", "verb"),
    [
        ("GET", "/api", "get"),
        ("GET", "/api/v1", "get"),
        ("GET", "/apis", "get"),
        ("GET", "/apis/apps", "get"),
        ("GET", "/apis/apps/v1", "get"),
        ("GET", "/version", "get"),
        ("POST", "/logs/x", "post"),
        ("HEAD", "/healthz", "head"),
        ("OPTIONS", "/openapi/v2", "options"),
    ],
)
def test_non_resource_paths(method: str, path: str, verb: str) -> None:
    a = RequestAttributes.from_http(method, path)
    assert not a.is_resource_request
    assert (a.verb, a.path, a.resource) == (verb, path, "")


def test_bare_watch_prefix_is_rejected_like_the_apiserver() -> None:
    with pytest.raises(ValueError, match="unable to determine kind and namespace"):
        RequestAttributes.from_http("GET", "/api/v1/watch")


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/api/v1/pods?watch=true", True),
        ("GET", "/api/v1/proxy/namespaces/a/pods/p", True),
        ("GET", "/api/v1/namespaces/a/pods/p/log", True),
        ("POST", "/api/v1/namespaces/a/pods/p/exec", True),
        ("POST", "/api/v1/namespaces/a/pods/p/attach", True),
        ("POST", "/api/v1/namespaces/a/pods/p/portforward", True),
        ("GET", "/api/v1/namespaces/a/services/s/proxy/x", True),
        ("GET", "/debug/pprof/profile", True),
        ("GET", "/debug/pprof", False),
        ("GET", "/api/v1/namespaces/a/pods/p", False),
        ("GET", "/api/v1/pods", False),
        ("GET", "/healthz", False),
    ],
)
def test_is_long_running(method: str, path: str, expected: bool) -> None:  # noqa: FBT001
    assert RequestAttributes.from_http(method, path).is_long_running is expected
