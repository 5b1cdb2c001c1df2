"""One reading of yes and no for connection extras, templated operator flags and source columns."""

from __future__ import annotations

import pytest

from airflow_provider_acumatica.utils.flags import flag


@pytest.mark.parametrize("value", [True, "true", " TRUE ", "t", "yes", "Y", "on", "1", 1])
def test_spellings_of_yes(value):
    assert flag(value) is True


@pytest.mark.parametrize("value", [False, "false", "F", "no", "n", "off", "0", 0, "", "  ", None, "None"])
def test_spellings_of_no(value):
    assert flag(value) is False


@pytest.mark.parametrize("value", ["maybe", "2", 2, "yess"])
def test_anything_else_is_neither(value):
    assert flag(value) is None
