import os
import sys

# before torch loads its OpenMP runtime (which reads this once): idle threads wait passively, leaving the
# cores to other work beside a run (a build, a test, the other queue worker). Results do not change.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cli import main  # noqa: E402

sys.exit(main())
