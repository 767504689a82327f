"""The fixes `bzzz.mesh.gossip` makes to py-libp2p's internals hold only for the version they were
written for. Bumping libp2p makes these tests fail and points at what to check again: the
version, then each replaced class, function and method, in the shape the fix expects."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import metadata
from typing import Any

import pytest
from libp2p.pubsub import gossipsub as gossipsub_module
from libp2p.pubsub import mcache as mcache_module
from libp2p.pubsub import pubsub as pubsub_module
from libp2p.pubsub import rpc_queue as rpc_queue_module
from libp2p.pubsub import utils as pubsub_utils
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.stream_muxer.yamux import yamux as yamux_module

from bzzz.mesh import gossip


def parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def looked_up_by(cls: type, name: str) -> list[str]:
    """The methods of `cls` that read the module global `name` when they run (so a patch of
    that global reaches them)."""
    return [attr for attr, value in vars(cls).items() if inspect.isfunction(value) and name in value.__code__.co_names]


def test_the_installed_py_libp2p_is_the_one_the_fixes_were_written_for() -> None:
    assert metadata.version("libp2p") == gossip.LIBP2P_VERSION, (
        "py-libp2p changed: check every fix in bzzz.mesh.gossip against it (this file lists them), "
        "then update LIBP2P_VERSION"
    )


def test_the_outbound_queue_it_replaces_is_still_made_from_the_module_global() -> None:
    library = rpc_queue_module.RpcQueue
    assert issubclass(gossip._CountingRpcQueue, library)
    assert parameters(library.__init__)[:2] == ["self", "max_size"]
    assert parameters(library.push) == parameters(gossip._CountingRpcQueue.push) == ["self", "rpc", "priority"]
    assert pubsub_module.RpcQueue in (library, gossip._CountingRpcQueue)
    assert looked_up_by(Pubsub, "RpcQueue"), "Pubsub no longer makes its queues from the module's RpcQueue"


def test_the_message_cache_still_takes_its_ids_from_the_module_global() -> None:
    assert parameters(mcache_module.default_msg_id_fn) == ["msg"]
    assert looked_up_by(mcache_module.MessageCache, "default_msg_id_fn") == ["put"]


def test_the_signed_record_check_is_still_called_through_both_modules_globals() -> None:
    assert parameters(pubsub_utils.maybe_consume_signed_record) == ["msg", "host", "peer_id"]
    assert parameters(gossip._consume_signed_record_once) == ["msg", "host", "peer_id"]
    for module in (pubsub_module, gossipsub_module):
        assert module.maybe_consume_signed_record in (
            pubsub_utils.maybe_consume_signed_record,
            gossip._consume_signed_record_once,
        )
    assert looked_up_by(Pubsub, "maybe_consume_signed_record")
    assert looked_up_by(GossipSub, "maybe_consume_signed_record")


def test_yamux_still_reads_the_window_update_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PY_YAMUX_RELEASE_ON_READ", "0")
    assert yamux_module._yamux_release_on_read() is False
    monkeypatch.setenv("PY_YAMUX_RELEASE_ON_READ", "1")
    assert yamux_module._yamux_release_on_read() is True


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (gossip.GatedPubsub.validate_msg, Pubsub.validate_msg),
        (gossip.GatedPubsub.notify_subscriptions, Pubsub.notify_subscriptions),
        (gossip.GatedPubsub._is_msg_seen, Pubsub._is_msg_seen),
        (gossip.CountedGossipSub._check_spam_protection, GossipSub._check_spam_protection),
    ],
)
def test_the_methods_overridden_still_exist_with_the_same_parameters(
    ours: Callable[..., Any], theirs: Callable[..., Any]
) -> None:
    assert parameters(ours) == parameters(theirs)
    assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(theirs)


def test_control_the_fixes_refuse_another_py_libp2p_and_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gossip, "_installed_libp2p", lambda: "0.9.0")
    queue, message_ids = pubsub_module.RpcQueue, mcache_module.default_msg_id_fn
    with pytest.raises(gossip.LibraryVersionError, match=r"py-libp2p 0\.9\.0 is installed.* py-libp2p 0\.8\.1"):
        gossip.install_library_fixes(64, lambda: None)
    assert pubsub_module.RpcQueue is queue and mcache_module.default_msg_id_fn is message_ids
    monkeypatch.setattr(gossip, "_installed_libp2p", lambda: gossip.LIBP2P_VERSION)
    gossip.check_library_version()  # and the version it was written for passes
