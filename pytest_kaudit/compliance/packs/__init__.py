"""Built-in requirement packs, stored as data files next to this module."""

from __future__ import annotations

from importlib import resources

from pytest_kaudit.compliance.load import load_requirements_text
from pytest_kaudit.compliance.model import Requirement

#: Pack names in report order.
PACKS = ("cis", "secrets", "stig", "forensics")


def available() -> list[str]:
    """The built-in packs this installation ships."""
    root = resources.files(__name__)
    return [p for p in PACKS if root.joinpath(f"{p}.yaml").is_file()]


def load_pack(name: str) -> list[Requirement]:
    """The requirements of one built-in pack.

    Raises:
        KeyError: no such pack.
    """
    if name not in available():
        raise KeyError(name)
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return load_requirements_text(text, source=f"<pack {name}>/{name}.yaml")
