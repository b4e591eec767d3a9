"""Administration: accounts, credit corrections, an overview of all work, and the audit trail
of every change an administrator makes."""
