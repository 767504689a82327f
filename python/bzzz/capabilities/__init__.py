"""What an agent can do, defined once: detected, advertised, and compared with what a task needs.

* `types`: `Capabilities` (models, tools, languages: what a task's needs are compared with)
  and `Detected` (all that detection found, which the mesh advertises);
* `names`: how names compare, and the one model matcher (`qwen2.5-coder` is met by any tag
  of it) with `choose_model`;
* `endpoints`: Ollama endpoint URLs, and `list_models`, the one way an endpoint's models are
  listed (detection, the executor, hmmm's thinker);
* `detect`, `machine`, `gpus`: detection (Ollama models, tools on PATH, CPUs, memory, load, GPUs);
* `config`: `CapabilityConfig`, where detection looks (the mesh worker's settings);
* `payload`: the `capabilities` envelope payload, fitted to the schema's limits (`schema`);
* `advertised`: what the mesh worker advertised, for the agent's other workers.
"""

from bzzz.capabilities.config import DEFAULT_OLLAMA_ENDPOINT, DEFAULT_TOOLS, CapabilityConfig
from bzzz.capabilities.detect import CapabilityDetector, detect
from bzzz.capabilities.endpoints import Endpoint, list_models
from bzzz.capabilities.gpus import Gpu, detect_gpus
from bzzz.capabilities.machine import Which, bzzz_version
from bzzz.capabilities.names import choose_model, matches, satisfied
from bzzz.capabilities.payload import PAYLOAD_MAX_BYTES
from bzzz.capabilities.schema import LIST_MAX, LOAD_PERMILLE_MAX, NAME_MAX_BYTES
from bzzz.capabilities.types import Capabilities, Detected

__all__ = [
    "DEFAULT_OLLAMA_ENDPOINT",
    "DEFAULT_TOOLS",
    "LIST_MAX",
    "LOAD_PERMILLE_MAX",
    "NAME_MAX_BYTES",
    "PAYLOAD_MAX_BYTES",
    "Capabilities",
    "CapabilityConfig",
    "CapabilityDetector",
    "Detected",
    "Endpoint",
    "Gpu",
    "Which",
    "bzzz_version",
    "choose_model",
    "detect",
    "detect_gpus",
    "list_models",
    "matches",
    "satisfied",
]
