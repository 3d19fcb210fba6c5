"""``python -m fer_core.book``: run the chapters and build the HTML book (:mod:`fer_core.book.make`)."""
import sys

from .make import main

sys.exit(main())
