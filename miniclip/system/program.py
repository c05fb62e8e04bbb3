"""How the three programs (``train``, ``evaluation``, ``grade``) end and warn.

* A problem the user can fix (a missing folder, a bad file, settings that contradict each
  other) ends with one line, ``PROG: error: MESSAGE``, whose message names the fix, and
  exit code 2, as argparse does for a bad command line. These are :class:`UsageError` and
  the exceptions of :data:`INPUT_ERRORS`.
* Any other failure ends with ``PROG: error: TYPE: MESSAGE (run again with --debug for the
  traceback)`` and exit code 1; ``--debug`` lets it raise, traceback and all.
* Ctrl-C ends with exit code 130 (128 + SIGINT, as a shell reports it).
* A warning prints as one line, ``PROG: warning: MESSAGE``, not Python's two lines naming
  the file and line of the library code that warned: the user needs the message, not
  where it came from.

:func:`run_program` applies all of it to a program's body; a program that has more to say
about an interruption or a failure (the training program names the command that resumes
it) catches that itself and returns its exit code.
"""
import sys
import warnings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A problem with the command line or its inputs; the message says how to fix it."""


#: Exceptions that mean "the inputs are wrong": one line and exit code 2.
INPUT_ERRORS = (UsageError, FileNotFoundError, NotADirectoryError, ValueError)


def message_of(error):
    """The error's text (a KeyError's str() is the repr of its message)."""
    return error.args[0] if isinstance(error, KeyError) and error.args else str(error)


def print_error(prog, message):
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


def run_program(prog, body, debug=False, input_errors=()):
    """``body()``'s exit code under the policy of the module docstring; ``prog`` names the
    program in its messages, ``input_errors`` adds the program's own user-fixable errors."""
    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # each distinct warning once, whatever the filters
            warnings.showwarning = one_line_warning
            return body()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (*INPUT_ERRORS, *input_errors) as error:
        if debug:
            raise
        print_error(prog, message_of(error))
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 (one line instead of a traceback)
        if debug:
            raise
        print_error(prog, f"{type(error).__name__}: {message_of(error)} "
                          "(run again with --debug for the traceback)")
        return EXIT_FAILED
