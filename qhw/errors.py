"""The one exception type for bad user input.

Every check on what a user gives (config files, weight files, arrays, command-line values) raises
:class:`QhwInputError` with a one-line message that names the field and what is allowed. The
command line turns it into ``qhw: error: <message>`` and exit status 2.
"""


class QhwInputError(ValueError):
    """Bad user input: the message names the field and what is allowed."""


class QhwToolError(RuntimeError):
    """An external tool (Verilator, Yosys, nextpnr) failed or returned no figures."""
