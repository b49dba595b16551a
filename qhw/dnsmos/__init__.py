"""DNSMOS P.808 in binary-activation form: the real model, its features, offline speech, the
binary student and its accelerator (docs/dnsmos.md).

Modules
-------
teacher
    The float DNSMOS P.808 model read from the ONNX file that the ``speechmos`` package ships,
    rebuilt as a PyTorch module, and the same file in onnxruntime.
features
    DNSMOS's input features (120-band log-mel, 900 frames per 9.01 s window) in NumPy/SciPy.
"""
