import sys

from mqe.cli import main

sys.exit(main())
