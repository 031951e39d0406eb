"""Linux audit daemon log: the loader (:mod:`.loader`), record reading (:mod:`.read`,
:mod:`.fields`, :mod:`.split`), event assembly (:mod:`.events`), mapping (:mod:`.map`,
:mod:`.categories`, :mod:`.syscalls`, :mod:`.rows`), helper processes (:mod:`.offload`) and
the compiled build of the hot path (:mod:`.native`, :mod:`.native_build`).

Importing this package, which happens before any of its modules is imported, puts the
compiled modules in front of their source when the build is fresh (:func:`.native.install`):
the check runs when the auditd parser is first needed, not when ``loaders`` is imported.
"""

from loaders.linux_auditd import native

native.install()
