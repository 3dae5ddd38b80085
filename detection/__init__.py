"""Video in, people out: decoding, motion gating, detection, tracking, the annotated snapshot, the S3 handler.

Importing ``detection`` is free: PyAV, numpy, Pillow and LiteRT load only with the submodules that need them
(``detection.pipeline``, ``detection.video``, ...), so nothing here weighs on a web process's cold start.
"""
