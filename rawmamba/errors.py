"""User-facing errors: one exception type whose message names the file or argument at fault."""


class RawMambaError(Exception):
    """A problem with the user's input (a file, an argument, a shape) explained in one sentence.

    The command line prints the message without a traceback and exits with status 1.
    """
