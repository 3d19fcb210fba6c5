"""The training loop and what it stands on (the floor above models, data and config):
set-up of a run (``build``), the loop (``engine``), evaluation (``evaluate``, ``metrics``, and the
intervals of ``stats``), losses, augmentation, checkpoints, the machine (``hardware``, ``kernels``).
Nothing here knows of run folders, records, the ledger or attention maps.

Modules: augment, build, checkpoints, engine, evaluate, hardware, kernels, losses, metrics, stats.
"""
__all__ = ['augment', 'build', 'checkpoints', 'engine', 'evaluate', 'hardware', 'kernels', 'losses', 'metrics', 'stats']
