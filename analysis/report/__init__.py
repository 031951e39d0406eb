"""The incident report: a model (:mod:`analysis.report.model`) rendered as self-contained
HTML, Markdown or JSON (:mod:`analysis.report.render`)."""
