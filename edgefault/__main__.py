import sys

from edgefault.cli import main

sys.exit(main())
