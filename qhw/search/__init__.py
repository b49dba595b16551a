"""Tasks, models and candidate evaluation for the per-operator GRU format search (docs/search.md).

Modules
-------
tasks
    The common data container (:class:`~qhw.search.tasks.TaskData`) and :func:`load_task`
    ("kws" or "digits"), without PyTorch.
kws
    Keyword spotting on synthetic speech: 10 keywords, "unknown" and "silence", eSpeak NG voices
    split by voice, 40 x 49 log-mel features of 1 s clips.
digits
    scikit-learn's 8 x 8 digits read row by row: 8 steps of 8 features.
model
    (PyTorch) the GRU classifier: float training, calibrated binary points, QAT with per-operator
    formats (:mod:`qhw.golden.gru_torch`), the integer evaluation on the golden GRU
    (:mod:`qhw.golden.gru`), and :func:`~qhw.search.model.evaluate_candidate`.
area
    The area model of the GRU datapath over the 21 widths (generic transistors, ECP5 LUT4),
    fitted on synthesized configurations, with its held-out error (no PyTorch).
search
    (PyTorch, pymoo) the NSGA-II search, its cache, the front's synthesis, outputs and report
    (``qhw search``); :func:`~qhw.search.search.evaluate_set` for a given set of configurations.
export
    The chosen configuration as a qhw network (features -> GRU -> dense head -> class scores):
    description, weights, inputs, ``qhw search --export-network`` (PyTorch only to train it).
"""
