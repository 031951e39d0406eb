"""Selectel cloud account audit log: the loader (:mod:`.loader`), its field tables
(:mod:`.fields`) and vectorized path (:mod:`.fast`, :mod:`.columns`)."""
