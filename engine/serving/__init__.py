"""Serving a relay request: routes, incoming auth, observables, vendor calls and their outcomes."""
