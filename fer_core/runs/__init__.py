"""What running an experiment means: lock, preflight, fit or resume, test, attention,
record (``runner``); the record's files (``records``), the published view of a results folder
(``ledger``), one process per run (``locks``), the checks before training (``preflight``), and
released weights scored on the book's protocol (``released``).

Modules: ledger, locks, preflight, records, released, runner.
"""
__all__ = ['ledger', 'locks', 'preflight', 'records', 'released', 'runner']
