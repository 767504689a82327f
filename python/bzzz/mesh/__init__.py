"""The mesh: libp2p host, discovery, gossip <-> bus, capabilities and the peer table."""
