"""PyTorch is an optional dependency (the ``train`` extra): qhw's core never imports it.

Generation, golden models, RTL simulation, synthesis, sweeps, reports and the DNSMOS demo on the
shipped weights run without PyTorch. Training (``python -m qhw.dnsmos.train``, the ``*_torch``
modules of :mod:`qhw.golden`, :mod:`qhw.dnsmos.student_torch`) and the tests' oracles need it:
``pip install "qhw[train]"`` (or ``"qhw[test]"``). The default index's ``torch==2.13.0`` pulls
several GB of CUDA packages; the CPU-only wheel comes from PyTorch's own index, installed before
qhw (:data:`CPU_WHEEL`).
"""

import sys

__all__ = ["CPU_WHEEL", "MESSAGE", "TorchMissing", "available", "import_torch", "exit_if_missing"]

CPU_WHEEL = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
MESSAGE = f'qhw: training needs PyTorch: pip install "qhw[train]" (CPU wheel: {CPU_WHEEL})'


class TorchMissing(ImportError):
    """PyTorch is not installed; the message says how to install it."""


def import_torch():
    """The ``torch`` module, or :class:`TorchMissing` (an ImportError) saying how to get it."""
    try:
        import torch
    except ImportError as e:
        raise TorchMissing(MESSAGE) from e
    return torch


def available():
    """Whether PyTorch can be imported (imports it when it can)."""
    try:
        import_torch()
    except TorchMissing:
        return False
    return True


def exit_if_missing():
    """For a training command: without PyTorch, write :data:`MESSAGE` (one line) to stderr and
    exit with status 2."""
    if not available():
        sys.stderr.write(MESSAGE + "\n")
        raise SystemExit(2)
