"""The agent's worker processes: each a short entry point that reads its typed settings
(`bzzz.runtime.WorkerRuntime.settings`; the models are named in `bzzz.config.BUILT_IN_SETTINGS`),
wires them to its concern's bus service (`bzzz.log.service`, `bzzz.mesh.service`, ...) and
serves it under the supervisor.
"""
