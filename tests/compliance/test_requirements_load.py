"""The requirement format: built-in packs load, and user files are checked strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kaudit.compliance.load import (
    MAX_BYTES,
    RequirementsError,
    load_requirements,
    load_requirements_text,
)
from pytest_kaudit.compliance.packs import available, load_pack
from pytest_kaudit.policy import Level
from pytest_kaudit.traffic import Identity

GOOD = """\
pack: team
requirements:
  - id: team.secret-reads
    title: Secret reads are logged
    source: "Team standard 4.1"
    rationale: >
      Who read which Secret must be known.
    requests:
      - verbs: [get, list]
        resource: secrets
        namespaces: [a, b]
        as: [admin, {user: alice, groups: [dev]}, {serviceAccount: a/robot}, anonymous]
    expect: {logged: true, level: {atMost: Metadata}}
  - id: team.maxage
    title: Logs are kept
    source: ["Team standard 4.2"]
    rationale: Keep them.
    flag: {name: audit-log-maxage, atLeast: 90}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RequirementsError) as info:
        load_requirements_text(text, source="team.yaml")
    return [str(p) for p in info.value.problems]


def test_builtin_packs_load_with_unique_ids_and_named_sources() -> None:
    ids = []
    for name in available():
        for req in load_pack(name):
            assert req.pack == name and req.id.startswith(f"{name}.")
            assert req.sources and all(s.strip() for s in req.sources)
            ids.append(req.id)
    assert len(ids) == len(set(ids))
    assert {"cis", "secrets"} <= set(available())


def test_a_user_file_loads_into_typed_requirements() -> None:
    reqs = load_requirements_text(GOOD, source="team.yaml")
    reads, maxage = reqs
    assert reads.kind == "traffic" and reads.line == 3 and reads.where == "team.yaml:3"
    assert reads.want is not None and reads.want.level is not None
    assert reads.want.level.level == Level.METADATA and reads.want.logged is True
    specs = reads.specs()
    assert len(specs) == 2 * 2 * 4
    assert {s.identity for s in specs} == {
        Identity.admin(), Identity.human("alice", ("dev",)),
        Identity.service_account("a", "robot"), Identity.anonymous()}
    assert maxage.kind == "flag" and maxage.flag is not None and maxage.flag.at_least == 90


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("    expect: {logged: true", "    expekt: {logged: true",
     "team.yaml:13: requirements[0].expekt: unknown field 'expekt' (did you mean 'expect'?)"),
    ("      - verbs: [get, list]", "      - verb: [get, list]",
     "team.yaml:9: requirements[0].requests[0].verb: unknown field 'verb' (did you mean 'verbs'?)"),
    ("atLeast: 90", "atLeast: ninety",
     "team.yaml:18: requirements[1].flag.atLeast: expected a whole number"),
    ("atMost: Metadata", "atMost: Metdata",
     "team.yaml:13: requirements[0].expect.level.atMost: unknown level 'Metdata'"),
    ("{serviceAccount: a/robot}", "{serviceAccount: robot}",
     "team.yaml:12: requirements[0].requests[0].as[2].serviceAccount: expected NAMESPACE/NAME"),
    ("verbs: [get, list]", "verbs: [get, lst]",
     "team.yaml:9: requirements[0].requests[0].verbs[1]: unknown verb 'lst'"),
    ("  - id: team.maxage", "  - id: team.secret-reads",
     "team.yaml:14: requirements[1].id: duplicate id 'team.secret-reads' (first at line 3)"),
])
def test_mistakes_name_file_line_and_field(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    found = problems(GOOD.replace(old, new))
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_listed_not_just_the_first() -> None:
    text = GOOD.replace("expect: {logged", "expekt: {logged").replace("atLeast: 90", "atLeast: x")
    assert len(problems(text)) == 2


def test_a_requirement_needs_exactly_one_kind_and_its_fields() -> None:
    text = GOOD.replace("    flag: {name: audit-log-maxage, atLeast: 90}\n", "")
    assert problems(text) == ["team.yaml:14: requirements[1]: give exactly one of 'requests', "
                              "'flag' and 'check'"]
    no_expect = GOOD.replace("    expect: {logged: true, level: {atMost: Metadata}}\n", "")
    assert problems(no_expect) == [
        "team.yaml:3: requirements[0]: a requirement with requests needs 'expect'"]


def test_bad_yaml_and_empty_files_are_located() -> None:
    assert problems("requirements: [\n")[0].startswith("team.yaml:2: ")
    assert problems("") == ["team.yaml: empty file"]
    assert problems("pack: x\n") == [
        "team.yaml:1: requirements: expected a non-empty list of requirements"]


def test_huge_files_are_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_BYTES + 1))
    with pytest.raises(RequirementsError, match="larger than"):
        load_requirements(big)


def test_request_explosions_are_refused() -> None:
    many = GOOD.replace("namespaces: [a, b]", "namespaces: [" + ", ".join(
        f"n{i}" for i in range(700)) + "]")
    assert any("the limit is" in p for p in problems(many))
