"""The synthesis cache under concurrency: processes that ask for the same design at once (sweep
workers, parallel tests, the demo beside a sweep) must each get the finished figures, never a
log that another run is rewriting ("Yosys stopped before the end of its script")."""

import concurrent.futures
import multiprocessing

import numpy as np

from qhw import flow, registry


def _synthesize(cache_dir):
    import os

    os.environ["QHW_CACHE_DIR"] = str(cache_dir)
    from qhw import synth_flow
    from qhw.config import config_from_dict
    unit = registry.get("expmul")
    cfg = config_from_dict(unit.config, {})
    params = unit.random_params(cfg, np.random.default_rng(0))
    gen = flow.generate(unit, cfg, params)
    return synth_flow.synthesize_verilog(gen.verilog, gen.top, "generic", fmax=False)["figures"]


def test_concurrent_requests_for_one_design_all_get_its_figures(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(3, mp_context=ctx) as pool:
        results = list(pool.map(_synthesize, [tmp_path] * 3))
    assert results[0]["transistors"] > 0
    assert results[1:] == results[:1] * 2
    # one synthesis ran: one design folder, its result written once
    (folder,) = (tmp_path / "synth").iterdir()
    assert (folder / "generic.result.json").is_file()
