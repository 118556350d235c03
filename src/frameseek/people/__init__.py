"""Who is there: faces detected on decoded frames, grouped into people per video and across the library.

Opt-in: nothing here runs unless a caller asks for faces (``--faces``, ``TrackOptions(extra={"faces"})``,
a face query, ``frameseek people``). ``models`` loads dlib's HOG detector, 5-point landmarks and ResNet
128-d embedder from ``face_recognition_models``; ``faces`` detects and embeds; ``grouping`` groups a
video's faces; ``calibration`` turns a face distance into the probability of the same person; ``matching``
finds a person's appearances; ``store`` keeps the library's people (atomic JSON under
``FRAMESEEK_HOME/people``); ``track`` is the ``faces`` frame track; ``find`` answers "where is this
person" and "who is in this video".
"""
