"""A declarative relay engine for Cisco SecureX / XDR: one Flask app, one YAML spec per vendor.

The data's way through the package:

    yaml_source -> loader (schema) -> compiler -> spec          load and check a vendor file
    expressions, functions, mapping                              templates and CTIM mappings
    vendor_http -> outcomes -> readers -> flows                  call the vendor, decide, map
    auth, observables, app                                       the relay API
    cli, lint, demo, standin, conformance/                       the tools around it
"""
from .app import create_app
from .loader import load_spec, load_specs

__all__ = ["create_app", "load_spec", "load_specs"]
