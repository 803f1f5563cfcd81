"""The cluster a ``kaudit check`` run proves its requirements on, built from plain options.

The options are the plugin's own (:data:`pytest_kaudit.options.OPTIONS`), so ``kaudit check
--backend kind --kind-image ...`` means what ``--kaudit-backend kind --kaudit-kind-image ...``
means in pytest; the backend is made by the plugin's factory.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_kaudit.backends.base import Backend
from pytest_kaudit.errors import KauditError, OptionError


def make_check_backend(given: Mapping[str, Any]) -> Backend:
    """The backend for option values by option name (unset ones take their defaults).

    Raises:
        KauditError: the options do not make a usable backend (named as plain ``--options``).
    """
    from pytest_kaudit.backend_choice import make_backend
    from pytest_kaudit.options import KauditConfig

    cfg = KauditConfig(rootdir=Path.cwd(), **{k: v for k, v in given.items() if v is not None})
    try:
        return make_backend(cfg)
    except OptionError as exc:
        # the plugin's words name its --kaudit-* options; here they are plain --options
        raise KauditError(f"--backend {cfg.backend}: "
                          + str(exc).replace("--kaudit-", "--")) from None
