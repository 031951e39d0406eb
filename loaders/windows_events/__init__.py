"""Windows event logs: the loader (:mod:`.loader`); the input forms (:mod:`.from_evtx`,
:mod:`.from_json`, :mod:`.from_xml`) normalized to one model (:mod:`.model`); the event table
(:mod:`.catalog`) and field shapes (:mod:`.shapes`) mapped by :mod:`.map`; the vectorized
EVTX path (:mod:`.fast`, :mod:`.fast_text`)."""
