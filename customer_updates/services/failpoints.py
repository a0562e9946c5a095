"""Failpoints: named places where an operator or a test can make a worker die on purpose.

Used by the system tests to prove the guarantees of DESIGN §2 at exact moments (for example between the
commit of an update and the publishing of its follow-on work). Off unless `CUSTOMER_UPDATES_FAILPOINT`
names the place; `CUSTOMER_UPDATES_FAILPOINT_ONCE_FILE` makes it fire once per file (the first process to
create the file dies, later ones go on), so a restarted worker can recover.
"""

from __future__ import annotations

import os
import signal

from customer_updates.settings import get_settings


def hit(name: str) -> None:
    settings = get_settings()
    if settings.failpoint != name:
        return
    if settings.failpoint_once_file:
        try:
            fd = os.open(settings.failpoint_once_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
    # The whole worker (main process and pool), like a power cut: nothing gets to clean up.
    os.killpg(os.getpgrp(), signal.SIGKILL)
