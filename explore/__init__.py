"""Design-space exploration: sweeps (:mod:`.sweep`), the executor that runs their points on Dask
(:mod:`.executor`) and the reports (:mod:`.report`). Imports run one way: explore -> synth ->
hdl/golden; nothing in synth/, hdl/ or golden/ imports from here."""
