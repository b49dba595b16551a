"""The regression's own pytest option and shared fixture. ``--qhw-waves DIR`` keeps an FST waveform of every failing
RTL run in DIR (``qhw.flow.rtlsim``, through the environment variable ``QHW_KEEP_WAVES``); the
failure says which file, the seed, and the command that reruns just that test. ``WAVES=1``
is cocotb's own switch for its runner and is not needed here. ``cache``: a private cache folder
per test module."""

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--qhw-waves", metavar="DIR", default=None,
                     help="keep an FST waveform of each failing RTL run in DIR")


def pytest_configure(config):
    folder = config.getoption("--qhw-waves")
    if folder:
        os.environ["QHW_KEEP_WAVES"] = os.path.abspath(folder)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private QHW_CACHE_DIR for one test module (speech, corpus, model and candidate caches),
    so that tests neither read nor fill the user's cache."""
    root = tmp_path_factory.mktemp("qhwcache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QHW_CACHE_DIR", str(root))
        yield root
