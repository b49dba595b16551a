"""The built-in units. Each unit registers itself, exactly once, in its module here."""

from . import binconv  # noqa: F401
from . import expmul  # noqa: F401
from . import gru  # noqa: F401
from . import bamconv  # noqa: F401
from . import fpdot  # noqa: F401
from . import pool  # noqa: F401
from . import requant  # noqa: F401
from . import network  # noqa: F401  (after the units its layers use)
