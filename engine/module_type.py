"""relay module_type: being written in this session (placeholder so the command line can name it)."""


def add_arguments(parser) -> None:
    parser.add_argument("rest", nargs="*")


def run(args) -> int:
    print("not available yet")
    return 2
