"""What every command line of the project shares (golden's, rtl_gen's and sim's)."""

import argparse

__all__ = ["OneLineParser"]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (``error: ...``) and exit status
    2: no usage block, never a traceback."""

    def error(self, message):
        self.exit(2, f"error: {message}\n")
