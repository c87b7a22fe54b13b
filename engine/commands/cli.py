"""The `relay` command line.

    relay serve [--host H] [--port P] [--vendors DIR]   run the relay locally
    relay demo [VENDOR] [--once]                        relay + stand-in vendor + a ready curl command
    relay lint [PATH...] [--json]                       check specs (exit 1 on any error)
    relay conformance [DIR] [--vendor NAME,...] [--expect FILE] [--waive FILE] [--json] [-v]
    relay try VENDOR TYPE VALUE [--endpoint E] [--replay FILE] [--record DIR] [--json]
    relay new NAME                                      write a commented starter spec
    relay jwt [VENDOR] [--claims FILE]                  mint an HS256 token and a SECRET_KEY
    relay module-type VENDOR                            print the XDR module type JSON

Exit codes: 0 success, 1 failure (lint errors, failed cases, a demo that got no data), 2 usage
errors (bad arguments, missing files).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from engine.errors import SpecErrors
from engine.serving.config import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.run(args)
    except SpecErrors as problem:
        print(problem, file=sys.stderr)
        print("The specs above do not load; `relay lint` lists every problem.", file=sys.stderr)
        return EXIT_FAILED
    except ConfigError as problem:  # a setting of the environment the relay cannot start with
        print(f"relay: {problem}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
    except BrokenPipeError:  # `relay lint --json | head`: the reader left, which is no error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the interpreter's own flush at exit is silent
        return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description="One declarative engine for Cisco XDR (SecureX) "
                                                               "relay modules: one YAML spec per vendor.")
    parser.add_argument("--version", action="version", version=f"relay {engine_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the relay locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--vendors", help="folder of vendor specs (default: $RELAY_VENDORS_DIR, else ./vendors)")
    serve.set_defaults(run=cmd_serve)

    demo = commands.add_parser("demo", help="relay + local stand-in vendor + a ready curl command")
    demo.add_argument("vendor", nargs="?", default="abuseipdb")
    demo.add_argument("--port", type=int, default=0, help="relay port (default: any free port)")
    demo.add_argument("--vendors", help="folder of vendor specs (default: ./vendors)")
    demo.add_argument("--once", action="store_true", help="ask once, print the answer and stop")
    demo.set_defaults(run=cmd_demo)

    lint = commands.add_parser("lint", help="check vendor specs")
    lint.add_argument("paths", nargs="*", help="spec files or folders (default: the folder `relay serve` "
                                               "reads: $RELAY_VENDORS_DIR, else ./vendors)")
    lint.add_argument("--json", action="store_true", help="machine-readable report")
    lint.set_defaults(run=cmd_lint)

    # Commands that live in a module of their own: it adds its arguments and runs them.
    for name, module, help_text in TOOL_COMMANDS:
        tool = importlib.import_module(f".{module}", __package__)
        sub = commands.add_parser(name, help=help_text, description=tool.__doc__.strip().splitlines()[0])
        tool.add_arguments(sub)
        sub.set_defaults(run=tool.run)
    return parser


TOOL_COMMANDS = (
    ("conformance", "corpus", "run a conformance corpus"),
    ("try", "trying", "run one observable through a spec and show every step"),
    ("new", "starter", "write a commented starter spec"),
    ("jwt", "jwt_tool", "mint an HS256 token for a vendor (and a SECRET_KEY)"),
    ("module-type", "module_type", "print the XDR module type JSON of a vendor"),
)


def engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("relay-engine")
    except PackageNotFoundError:  # run from a checkout that was not installed
        return "unknown"


def specs_folder(folder: str | None = None) -> str:
    """Where the specs are, for every command alike: --vendors, else $RELAY_VENDORS_DIR, else
    ./vendors (or the packaged catalogue when there is none)."""
    from engine.serving.config import default_vendors_dir
    return folder or os.environ.get("RELAY_VENDORS_DIR") or default_vendors_dir()


def _specs(folder: str | None, needed=()) -> dict:
    """The specs that load. A spec that does not is left out with a note, unless the command needs
    it (`needed`: vendor names): then its problems are the command's error."""
    from engine.spec.load import load_catalogue
    catalogue = load_catalogue(specs_folder(folder))
    wanted = [problem for name in needed if name in catalogue.broken for problem in catalogue.broken[name]]
    if wanted:
        raise SpecErrors(wanted)
    if catalogue.broken:
        names = sorted(catalogue.broken)
        print(f"note: left out {', '.join(names)}: {'its spec does' if len(names) == 1 else 'their specs do'} "
              "not load (relay lint shows why)", file=sys.stderr)
    return catalogue.specs


def cmd_serve(args) -> int:
    from werkzeug.serving import run_simple

    from engine.serving.app import create_app, spec_cache
    from engine.serving.config import RelayConfig
    from engine.spec.load import load_catalogue
    config = RelayConfig.from_environ()
    catalogue = load_catalogue(specs_folder(args.vendors), spec_cache(config))
    app = create_app(catalogue.specs, config, broken=catalogue.broken)
    print(serving_summary(config, catalogue.specs, f"http://{args.host}:{args.port}", catalogue.broken), flush=True)
    run_simple(args.host, args.port, app, threaded=True)
    return EXIT_OK


def serving_summary(config, specs: dict, root: str, broken: dict | None = None) -> str:
    """What `relay serve` serves, and why it checks tokens the way it does."""
    from engine.serving.app import routes_of
    why = {"hs256": "SECRET_KEY is set" if not os.environ.get("RELAY_AUTH") else "RELAY_AUTH=hs256",
           "jwks": "no SECRET_KEY is set" if not os.environ.get("RELAY_AUTH") else "RELAY_AUTH=jwks"}
    mode = {"hs256": "HS256 tokens signed with SECRET_KEY",
            "jwks": f"XDR's RS256 tokens, keys from {', '.join(config.jwks_hosts)}"}[config.auth_mode]
    lines = [f"auth: {mode} ({why[config.auth_mode]})"]
    for name, spec in sorted(specs.items()):
        routes = " ".join(routes_of(spec))
        lines.append(f"{root}/{name}  {spec.title}: {routes}")
    for name in sorted(broken or {}):
        lines.append(f"{root}/{name}  MISCONFIGURED: its spec does not load (relay lint shows why); "
                     "its routes answer `misconfigured module`")
    if config.root_vendor:
        lines.append(f"{root}  {config.root_vendor} at the root too (RELAY_VENDOR)")
    return "\n".join(lines)


def cmd_demo(args) -> int:
    from engine.commands.demo import DemoError, run_demo
    try:
        return run_demo(_specs(args.vendors, [args.vendor]), args.vendor, args.port, args.once, sys.stdout)
    except DemoError as problem:
        print(f"relay demo: {problem}", file=sys.stderr)
        return EXIT_USAGE


def cmd_lint(args) -> int:
    from engine.commands.lint import lint_paths
    paths = args.paths or [specs_folder()]
    missing = [path for path in paths if not Path(path).exists()]
    if missing:
        print(f"relay lint: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    report = lint_paths(paths)
    print(report.json() if args.json else report.text())
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
