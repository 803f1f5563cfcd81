"""Wrong arguments to ``expect``/``logged``: one clear line from the user's own frame.

Run through pytester so the check covers what the user sees: the message, and no frames of
enum.py or of the plugin in the traceback. The expectation never reaches its event window,
so none is needed (``None`` stands in for it).
"""

from __future__ import annotations

import pytest

from pytest_kaudit.expect.criteria import Criteria
from pytest_kaudit.policy import Level, Stage

CALLS = """
    from pytest_kaudit.expect.criteria import Criteria
    from pytest_kaudit.expect.expectation import Expectation

    def test_level():
        Expectation(None, Criteria({{}})).logged(level="Everything")

    def test_stage():
        Expectation(None, Criteria({{}})).logged(stages=["RequestReceived", "RequestComplete"])

    def test_filter():
        Criteria.from_filters({{"verbs": ["get"]}})

    def test_filter_level():
        Criteria.from_filters({{"level": "metadata"}})
"""


def test_errors_are_one_line_from_the_users_frame(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CALLS.format())
    result = pytester.runpytest("-p", "no:kaudit")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines([
        "E *ValueError: logged(level=...): invalid choice: 'Everything' (choose from None, "
        "Metadata, Request, RequestResponse)",
        "E *ValueError: logged(stages=...): invalid choice: 'RequestComplete' (choose from "
        "RequestReceived, ResponseStarted, ResponseComplete, Panic; did you mean "
        "'ResponseComplete'?)",
        "E *TypeError: unknown audit event filter(s) verbs; filters are: verb, *; did you mean "
        "'verb'?",
        "E *ValueError: the level filter: invalid choice: 'metadata' (*did you mean 'Metadata'?)",
    ])
    out = result.stdout.str()
    assert "enum.py" not in out
    assert "expectation.py" not in out and "criteria.py" not in out and "model.py" not in out


def test_members_and_exact_names_still_work() -> None:
    criteria = Criteria.from_filters({"level": Level.METADATA, "stage": ["ResponseComplete",
                                                                        Stage.PANIC]})
    assert criteria.values["level"] == "Metadata"
    assert criteria.values["stage"] == frozenset({"ResponseComplete", "Panic"})


def test_several_unknown_filters_each_get_a_hint() -> None:
    with pytest.raises(TypeError, match="'resources': did you mean 'resource'.*'verbs': did you "
                                        "mean 'verb'"):
        Criteria.from_filters({"verbs": "get", "resources": "pods"})
