"""Detectors and their registry (:mod:`analysis.detect.base`); the login analytics
(:mod:`analysis.detect.logins`). ``auditlens detect --list`` prints the registry."""
