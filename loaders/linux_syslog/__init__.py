"""Whole syslog files and the systemd journal: the loader (:mod:`.loader`) and the journal's
two machine forms (:mod:`.journal`)."""
