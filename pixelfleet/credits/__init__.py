# Registers the ledger's counter on every session, whichever credits module is imported first.
from pixelfleet.credits import metrics as _metrics  # noqa: F401
