"""Exceptions whose message a shop owner can read and act on.

Every failure the core expects (a wrong password, an unreachable server, a corrupt archive)
is raised as a subclass of :class:`DesktopBackupError`; its ``str()`` is one plain sentence
that the command line prints on stderr and the window shows in context. Anything else is a
bug and keeps its traceback for the log.
"""


class DesktopBackupError(Exception):
    """A failure with a message meant for the person at the keyboard."""


class UsageError(DesktopBackupError):
    """The command was called with arguments that cannot work (exit status 2)."""


class DatabaseUnavailable(DesktopBackupError):
    """The billing database cannot be reached, opened or understood."""


class DatabaseAuthRefused(DatabaseUnavailable):
    """The server refused the database user name or password: worth asking for a password."""


class SchemaError(DesktopBackupError):
    """The billing database does not have the tables or columns the mapping names."""


class LoginRefused(DesktopBackupError):
    """The user may not use the console: wrong credentials, role, or organization state."""


class LockedOut(LoginRefused):
    """Too many failed logins for one username on this workstation."""

    def __init__(self, message: str, minutes_left: int) -> None:
        super().__init__(message)
        self.minutes_left = minutes_left


class KeyringUnavailable(DesktopBackupError):
    """No usable OS keyring: the password must be typed each time."""


class OrganizationNotFound(DesktopBackupError):
    """No organization has the id or code that was asked for."""


class ConsoleTablesNotAllowed(DesktopBackupError):
    """The database is not the billing app's and nobody has allowed the console to add its
    own tables to it yet."""
