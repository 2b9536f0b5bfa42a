"""The `beds` command. Thin: parse, load settings, hand over. `main(argv) -> int` for tests.

Layer: interface (CLI). Modules: parser (the argparse tree, whose help strings are the command
reference), app (main: environment, config sections, dispatch), commands (call, templates list,
config show, schema apply), check (templates check), failures (one line per failure, exit
codes), dotenv (./.env), completion (bash/zsh scripts). docs/cli.md is the user's guide.

Exit codes: 0 ok; 1 the work failed (error reply, problems found, a service unreachable, a path
not writable); 2 usage, config or template error (nothing was started).

  beds --role NAME [--config PATH] [--env PATH]      run a node
       [--workers N]                                  ... as N processes under a supervisor
  beds call TEMPLATE OP [--params JSON] [--limit N] [--offset N] [--cursor T] [--timeout S]
       [--deadline S] [--message-id ID] [--user-id USER] [--json]
  beds templates check [--role NAME] [--offline] [--json]   every problem, one line each
  beds templates list [--role NAME] [--json]          ops, kinds, targets, brokers
  beds config show [--role NAME] [--json]             effective config, secrets masked
  beds schema apply --datasource NAME [--reset-password]    apply schema/<engine>/ files in order
  beds scaffold SPEC --engine ENGINE [--out DIR]      schema + template + docs from a domain spec
  beds scaffold --describe TEXT [--write SPEC]        a spec drafted by a chat endpoint you provide
  beds docs [--out DIR]                               AsyncAPI 3.0 document + Markdown catalogue
  beds client-gen --python OUT                        a typed client module for the catalogue
  beds status | ping                                  the cluster, as the admin node sees it
  beds scale NODE BROKER N                            run N instances of a broker, now
  beds drain NODE | beds resume NODE                  stop / restart taking requests on a node
  beds reload [NODE]                                  reload templates (checked first)
  beds completion bash|zsh                            a shell completion script
Every command takes --debug (a traceback behind the one-line error).
"""

from beds.cli.app import main

__all__ = ["main"]
