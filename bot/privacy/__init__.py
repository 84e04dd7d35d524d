"""Citizens' rights over their data: a copy of everything (export) and erasure.

Sits just below the core: it reads and rewrites the store, the tickets, the identities
and the audit log, and the core's chat commands ("my data", "erase my data") call it.
Tables of the surfaces above it (the e-mail channel's raw mail, the console's KB
proposals) and of features that may not exist yet (consents) are reached by table
name on the shared metadata, never by import, so this package stays below them.
"""
