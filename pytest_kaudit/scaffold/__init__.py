"""``kaudit scaffold``: a policy's witness requests written as a pytest module to start from."""

from pytest_kaudit.scaffold.naming import near_miss_test_name, rule_test_name, rule_words
from pytest_kaudit.scaffold.render import render_module

__all__ = ["near_miss_test_name", "render_module", "rule_words", "rule_test_name"]
