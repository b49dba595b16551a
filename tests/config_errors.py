"""A helper shared by the bad-configuration tests (tests/test_expdot_*.py)."""

import pytest

from qhw.config import config_from_dict
from qhw.errors import QhwInputError


def assert_config_error(config_class, data, words):
    """``config_from_dict(config_class, data)`` is refused with one line (a QhwInputError)
    containing every one of ``words``; returns the message."""
    with pytest.raises(QhwInputError) as err:
        config_from_dict(config_class, data)
    message = str(err.value)
    assert "\n" not in message, message
    assert all(word in message for word in words), message
    return message
