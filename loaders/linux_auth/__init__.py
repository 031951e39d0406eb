"""Linux authentication logs: the loader (:mod:`.loader`) and its message rules
(:mod:`.messages`)."""
