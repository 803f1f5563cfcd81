"""The backend a run's options ask for, built on first use.

Each backend is imported only when chosen: they have their own dependencies (docker, kind,
the control-plane binaries), and most runs use one.
"""

from __future__ import annotations

import os
from pathlib import Path

from pytest_kaudit.backends.base import Backend
from pytest_kaudit.errors import OptionError
from pytest_kaudit.options import KauditConfig


def make_backend(cfg: KauditConfig) -> Backend:
    """Instantiate the configured backend (imported lazily: each has its own dependencies).

    Raises:
        OptionError: the options name no usable backend (the plugin shows a usage error).
    """
    name = cfg.backend
    if name == "local":
        from pytest_kaudit.backends.local import LocalBackend

        return LocalBackend(apiserver_bin=cfg.apiserver_bin, etcd_bin=cfg.etcd_bin,
                            reuse=cfg.reuse, idle_minutes=cfg.warm_idle)
    if name == "kind":
        from pytest_kaudit.backends.kind import KindBackend

        base = Path(cfg.kind_config) if cfg.kind_config else None
        return KindBackend(kind_bin=cfg.kind_bin, node_image=cfg.kind_image, base_config=base,
                           reuse=cfg.reuse, keep=cfg.keep, name=cfg.cluster_name,
                           config_dump=Path(cfg.kind_config_dump) if cfg.kind_config_dump else None)
    if name == "k3s":
        from pytest_kaudit.backends.k3s import K3sBackend

        return K3sBackend(image=cfg.k3s_image, reuse=cfg.reuse, keep=cfg.keep)
    if name == "existing":
        from pytest_kaudit.backends.existing import ExistingBackend

        if not cfg.kubeconfig and not os.environ.get("KUBECONFIG"):
            raise OptionError("--kaudit-backend=existing needs --kaudit-kubeconfig "
                                    "(or KUBECONFIG) and --kaudit-log-path or --kaudit-log-command")
        return ExistingBackend(kubeconfig=cfg.kubeconfig or os.environ["KUBECONFIG"],
                               context=cfg.context, log_path=cfg.log_path,
                               log_command=cfg.log_command)
    raise OptionError(f"unknown backend {name!r}")
