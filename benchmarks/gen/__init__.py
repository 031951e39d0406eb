"""Helpers of ``benchmarks/generate.py``: one module per source family.

- :mod:`gen.core` — output files that count lines, the ground-truth recorder, time streams.
- :mod:`gen.cast` — the company, its people and machines, and the incident timeline.
- :mod:`gen.cloud` — Selectel audit log and control-panel authorization log.
- :mod:`gen.keystone` — Keystone CADF notifications.
- :mod:`gen.linux` — ``audit.log`` and ``auth.log`` of one server.
- :mod:`gen.windows` — Sysmon and Security events as Winlogbeat NDJSON.
- :mod:`gen.k8s` — the Kubernetes API audit log (and its webhook batch).
- :mod:`gen.k8s_cluster` — container logs, cluster events, managed-cluster tasks.
"""
