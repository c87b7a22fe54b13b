"""A declarative relay engine for Cisco XDR (and SecureX): one Flask app, one YAML spec per vendor.

The package follows the data's way through it:

    spec/       loading a vendor file: load (a folder, a cache) -> pipeline: source (YAML with
                positions) -> schema check -> compiler (semantic checks, compiled expressions)
                -> model (frozen Spec); cache keeps compiled specs between starts
    language/   the expression language: expressions and templates, functions, CTIM mappings
    serving/    serving a relay request: app (routes) -> auth -> observables -> flows
                (steps via vendor_http, outcomes, readers; mappings) -> envelope
    commands/   the `relay` command line: lint, try, demo, jwt, new, module-type, reference
    conformance/  the conformance runner: replayed vendors, comparison rules
    ctim.py     the CTIM schema check shared by lint, try and the tests
    errors.py   SpecError (a located mistake in a spec) and RelayError (what a relay answers)
    wsgi.py     the WSGI application built from the environment (Zappa, gunicorn)
    startup.py  no garbage collections while a process starts
"""
from engine.startup import without_collections

with without_collections(freeze=True):  # what imports make lives as long as the process
    from engine.serving.app import create_app
    from engine.spec.load import load_spec, load_specs

__all__ = ["create_app", "load_spec", "load_specs"]
