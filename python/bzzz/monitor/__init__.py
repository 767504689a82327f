"""The Mesh Visualizer (`bzzz monitor`): a mesh node that takes no work, follows every agent's
signed log by the key it advertises, and serves a web page of the mesh (topology, agents, tasks,
discussions, logs) with live updates.

    settings   MonitorSettings: the HTTP bind, text caps, page sizes, how often to look
    text       the one cap on peer text (every string from a peer or a log goes through it)
    model      the pure model: capability snapshots and log entries in, agents/topology/tasks/
               discussions out, with the changes each step made (no network)
    follower   asks the mesh worker to follow each log; reads the verified replicas, new entries only
    web        the HTTP app (Starlette): the page, the JSON API, server-sent events, /metrics
    metrics    the monitor's own Prometheus series
    service    the worker's loop tying them together
    launch     start `bzzz monitor` from Python (the demo) and get its URL
"""
