"""The `relay` command line and the tools behind it (lint, try, demo, jwt, new, module-type)."""
