import sys

from recipe_engine.cli import main

sys.exit(main())
