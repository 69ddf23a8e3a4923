"""The Kong stand-in image's ``/bin/resty``: ``python /standins/resty_standin.py "$@"``
(``-e CODE`` in real Lua; see ``kong/resty.py``)."""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from kong.resty import main

    sys.exit(main(sys.argv[1:]))
