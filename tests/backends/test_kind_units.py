"""KindBackend decisions that need no kind, docker or cluster (tools pre-seeded)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_kaudit.backends.kind import KindBackend
from pytest_kaudit.backends.kind import config as kc
from pytest_kaudit.backends.kind import diagnostics as kind_diagnostics


def seeded(kind_version: tuple[int, int, int], node_image: str | None = None) -> KindBackend:
    backend = KindBackend(node_image=node_image)
    backend._kind, backend._cli, backend._kind_version = Path("kind"), Path("docker"), kind_version
    return backend


@pytest.mark.parametrize(
    ("kind_version", "image", "expected"),
    [
        ((0, 34, 0), None, "kubeadm.k8s.io/v1beta4"),  # newer than we know: its default >= 1.36
        ((0, 32, 0), "registry.local/node@sha256:abc", "kubeadm.k8s.io/v1beta4"),
        ((0, 31, 0), "registry.local/node@sha256:abc", "kubeadm.k8s.io/v1beta3"),
        ((0, 34, 0), "kindest/node:v1.31.12", "kubeadm.k8s.io/v1beta3"),
        ((0, 31, 0), None, "kubeadm.k8s.io/v1beta3"),
    ],
)
def test_unknown_image_version_is_guessed_per_kind_release(
    kind_version: tuple[int, int, int], image: str | None, expected: str
) -> None:
    backend = seeded(kind_version, image)
    assert kc.kubeadm_api_version(kind_version, backend._kubeadm_target()) == expected


def test_diagnose_log_survives_empty_stat_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        kind_diagnostics,
        "exec_in",
        lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=b"", stderr=b""),
    )
    text = kind_diagnostics.diagnose_log(kc.host_dirs(tmp_path), Path("docker"), "n")
    assert text.startswith("Neither the host")
