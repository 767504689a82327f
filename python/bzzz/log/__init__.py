"""The agent's own signed log: where it lives on disk, its key, and its entries."""

from bzzz.log.events import decode_entry, encode_event
from bzzz.log.keys import KeyFileError, load_key_pair, save_key_pair
from bzzz.log.store import AgentLog

__all__ = [
    "AgentLog",
    "KeyFileError",
    "decode_entry",
    "encode_event",
    "load_key_pair",
    "save_key_pair",
]
