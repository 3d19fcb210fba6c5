"""Where a model looks: Captum attributions (``attribution``) and the attention record
of a run (``attention``), above the loop it explains.

Modules: attention, attribution.
"""
__all__ = ['attention', 'attribution']
