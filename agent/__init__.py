"""The camera agent: the one part of Corb that runs in the building.

It reads each camera's stream, cuts segments by stream copy where the segment policy says
(``agent.segmenter``), and puts complete files into the bucket as ``cameras/<slug>/<UTC capture start>.mkv``.
It needs no database and no permission beyond writing its cameras' prefixes.
"""
