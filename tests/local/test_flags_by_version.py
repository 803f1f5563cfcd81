"""Flag selection by apiserver version and host, without booting.

`StubBinaries` stands in for what `kube-apiserver --help` reports (a test double of the
binary's help text only); the real 1.20 binary's answers are checked in the last test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_kaudit.backends.local import backend as local_backend
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.backends.local.pki import ClusterPKI


@dataclass
class StubBinaries:
    """Answers `supports()` like a kube-apiserver whose --help lists `flags`."""

    flags: frozenset[str]

    def supports(self, flag: str) -> bool:
        return flag in self.flags


def _flags(tmp_path: Path, binaries: object, user: dict[str, str] | None = None) -> dict[str, str]:
    pki = ClusterPKI.create(tmp_path / "pki")
    return local_backend.apiserver_flags(
        binaries,  # type: ignore[arg-type]
        etcd_url="http://127.0.0.1:1", port=6443, pki=pki, policy_file=tmp_path / "p.json",
        log_path=str(tmp_path / "audit.log"), user_flags=user or {})


def test_insecure_port_only_where_the_binary_has_it(tmp_path: Path) -> None:
    old = _flags(tmp_path / "a", StubBinaries(frozenset({"insecure-port"})))  # e.g. 1.19
    new = _flags(tmp_path / "b", StubBinaries(frozenset()))  # 1.24+: passing it fails the boot
    assert old["insecure-port"] == "0"
    assert "insecure-port" not in new


def test_no_default_route_uses_loopback_and_no_endpoint_reconciler(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(local_backend, "has_default_route", lambda: False)
    flags = _flags(tmp_path, StubBinaries(frozenset()))
    assert flags["advertise-address"] == "127.0.0.1"
    assert flags["endpoint-reconciler-type"] == "none"


def test_route_table_parsing(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text("Iface\tDestination\tGateway\neth0\t00000000\t010200C0\n")
    assert local_backend.has_default_route(table)
    table.write_text("Iface\tDestination\tGateway\neth0\t000200C0\t00000000\n")
    assert not local_backend.has_default_route(table)


def test_user_flags_come_last(tmp_path: Path) -> None:
    flags = _flags(tmp_path, StubBinaries(frozenset()), {"audit-log-maxage": "30"})
    assert list(flags)[-1] == "audit-log-maxage"


def test_the_real_1_20_binary(control_plane_binaries: ControlPlaneBinaries) -> None:
    assert control_plane_binaries.version >= (1, 20)
    assert control_plane_binaries.supports("audit-policy-file")
    assert control_plane_binaries.supports("service-account-signing-key-file")
    assert not control_plane_binaries.supports("no-such-flag")
