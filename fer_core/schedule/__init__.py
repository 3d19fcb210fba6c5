"""Which runs to make, where and when: a paper's plan (``plans``), slices of it run
here (``slices``), on Ray (``executors``) or as a queue (``queues``), the offline bundle for a
node (``bundle``), and the speed figures that price them (``bench``, ``speed``).

Modules: bench, bundle, executors, plans, queues, slices, speed.
"""
__all__ = ['bench', 'bundle', 'executors', 'plans', 'queues', 'slices', 'speed']
