"""Plotly figures over analysis results. The only package of auditlens that imports plotly:
the analysis pipeline returns DataFrames and never draws."""
