"""Each script once per page. jupyter-book 1.x registers sphinx-thebe's configuration script
(``const THEBE_JS_URL = ...``) twice, and the second declaration of a ``const`` is a JavaScript
SyntaxError on every page of the book (seen in headless Chromium by ``tests/test_browser.py``).
This drops a script whose source and body are those of one before it."""


def _once(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for script in context.get("script_files", []):
        # the same file, or the same inline code (registered once with filename None, once with "")
        key = (getattr(script, "filename", script) or "", getattr(script, "attributes", {}).get("body"))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    # early: the event stops at the first handler that returns a template name (emit_firstresult)
    app.connect("html-page-context", _once, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
