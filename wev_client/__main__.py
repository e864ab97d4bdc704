"""Entry point of the `wev` console script and of ``python -m wev_client``."""

import sys

from wev_client.cli import main

if __name__ == "__main__":
    sys.exit(main())
