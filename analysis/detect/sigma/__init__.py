"""Sigma rules over the whole store: pySigma parses, :mod:`.backend` compiles to DuckDB SQL,
:mod:`.pipeline` maps Sigma log sources and fields to the store's columns (as data), and
:mod:`.engine` runs one query per log source and turns hits into findings.

The rules' licence (SigmaHQ's DRL 1.1) requires attribution: every finding carries the rule's
id, author and references.
"""
