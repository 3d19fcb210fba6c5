"""The book (the top floor under the command line): the chapters' objects and what they show, the
figures, the front chapter, and the make of the HTML book (``make``: ``python -m fer_core.book``).

Modules: attention_views, chapter, explorer, foundation, gallery, make, new_paper, plots.
"""
__all__ = ['attention_views', 'chapter', 'explorer', 'foundation', 'gallery', 'make', 'new_paper', 'plots']
