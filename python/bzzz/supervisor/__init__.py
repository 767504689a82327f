"""One agent on one host: the supervisor process and the workers it starts, watches and restarts."""

from bzzz.supervisor.client import ControlClient, ControlError
from bzzz.supervisor.errors import StartError
from bzzz.supervisor.supervisor import Supervisor

__all__ = ["ControlClient", "ControlError", "StartError", "Supervisor"]
