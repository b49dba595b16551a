"""The regression's own pytest option: ``--qhw-waves DIR`` keeps an FST waveform of every failing
RTL run in DIR (``qhw.flow.rtlsim``, through the environment variable ``QHW_KEEP_WAVES``); the
failure says which file, the seed, and the command that reruns just that test. ``WAVES=1``
is cocotb's own switch for its runner and is not needed here."""

import os


def pytest_addoption(parser):
    parser.addoption("--qhw-waves", metavar="DIR", default=None,
                     help="keep an FST waveform of each failing RTL run in DIR")


def pytest_configure(config):
    folder = config.getoption("--qhw-waves")
    if folder:
        os.environ["QHW_KEEP_WAVES"] = os.path.abspath(folder)
