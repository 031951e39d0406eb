"""Kubernetes API server audit log: the loader (:mod:`.loader`), its vectorized path (:mod:`.fast`,
:mod:`.columns`), request details and stage merging (:mod:`.details`) and shipper envelopes
(:mod:`.wrappers`)."""
