"""Selectel control-panel authorization log: the loader (:mod:`.loader`) and the export's
header matching and value parsing (:mod:`.headers`)."""
