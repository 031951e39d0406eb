"""The evidence store: its on-disk contract (:mod:`.layout`), staging and commits
(:mod:`.staging`, :mod:`.store`, :mod:`.uidindex`), verification (:mod:`.verify`) and the read
side (:mod:`.read`). It imports the event schema and nothing of any parser.
"""
