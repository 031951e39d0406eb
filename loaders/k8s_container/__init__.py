"""Container stdout/stderr logs (CRI, docker json-file): the loader (:mod:`.loader`), the
vectorized reader (:mod:`.fast`, :mod:`.split`) and level/message lifting (:mod:`.lift`)."""
