"""One module per `mmpref` subcommand: `add_parser(subparsers)` registers it, `run(args)` runs it."""
