"""``python -m workmesh.services.cli`` runs the ``workmesh`` command."""

import sys

from workmesh.services.cli import main

sys.exit(main())
