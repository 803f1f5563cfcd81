"""The end of a run: the process's last garbage collections are spared, nested runs untouched."""

from __future__ import annotations

import gc

import pytest


def test_a_process_ending_with_its_run_freezes_what_survives(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import atexit, gc

        atexit.register(lambda: print(f"frozen objects at exit: {gc.get_freeze_count() > 0}"))
    """)
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["frozen objects at exit: True"])


def test_a_run_inside_another_program_leaves_its_objects_alone(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    before = gc.get_freeze_count()
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert gc.get_freeze_count() == before
