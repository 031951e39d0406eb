"""Ingest orchestration: discovering inputs (files, directories, archives), running a loader
over each file (:mod:`loaders.ingest.runner`) and committing the result to the store
(:mod:`loaders.ingest.pipeline`). The one layer that imports both the registry and the store.
"""
