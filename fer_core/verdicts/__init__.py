"""What the papers say and whether it holds: the papers (``papers``), their claims
(``claims``), the one verdict rule (``rule``) and the hours the untested claims wait for
(``budgets``).

Modules: budgets, claims, papers, rule.
"""
__all__ = ['budgets', 'claims', 'papers', 'rule']
