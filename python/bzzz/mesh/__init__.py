"""The mesh: libp2p host, discovery, gossip <-> bus, capability broadcasts and the peer table.

What is broadcast (detection, the payload) is `bzzz.capabilities`.
"""
