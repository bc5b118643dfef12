import sys

from lit_genvision.cli import main

sys.exit(main())
