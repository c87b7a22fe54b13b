"""The relay as a WSGI application built from the environment: `engine.wsgi:app`.

Zappa's `app_function` (`engine.wsgi.app`) and gunicorn (`gunicorn engine.wsgi:app`) both import
this module. Building the app here, at import, puts the loading of every vendor spec (schema
check, compiled expressions) into the process's start: on Lambda that is the init phase, which runs
before the first request and with a full CPU. Configuration comes from the environment once
(engine/serving/config.py). A spec that does not load is logged with every problem and set aside:
the others are served, and its routes answer that the module is misconfigured.
"""
from engine.serving.app import create_app
from engine.startup import without_collections

with without_collections(freeze=True):  # what is made here serves every request of the process
    app = create_app()
