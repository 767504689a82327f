"""A real Ollama for the tests: the binary `make ollama` builds, the models it imports, servers.

    python -m tests.ollama prepare      # what `make ollama` runs after the build: import the models

- `binary()`: the `ollama` built by tools/build/ollama.sh into the tools cache, or None;
- `write_tiny_model(path)`: a random-weight llama GGUF of about 0.5 MB, the same bytes every
  time, that Ollama loads and runs (its answers are nonsense, at once);
- `write_malformed_model(path)`: one that takes `ollama serve` down when it is imported;
- `check_gguf(path)`: what `ollama create` would be fed, read with the gguf reader first: a
  file that would take the server down is refused here (`BadModel`, saying why);
- `serve(binary, models)`: `ollama serve` on a free port, waited for, stopped at the end;
- `import_model(...)`: `ollama create NAME -f Modelfile` (`FROM ./file.gguf`), checked first.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import gguf
import httpx
import numpy as np

from tests.agents import free_port, wait_until

VERSION = "0.17.4"
CACHE = Path(os.environ.get("TOOLS_CACHE") or Path.home() / ".cache" / "bzzz") / f"ollama-{VERSION}"
MODELS = CACHE / "models"  # the models `make ollama` imported: tiny, and Gemma 3 270M if installed
TINY = "bzzz-tiny:latest"
GEMMA = "gemma3:270m"
NOT_BUILT = "no real Ollama built (make test-ollama)"


def binary() -> Path | None:
    path = CACHE / "ollama"
    return path if os.access(path, os.X_OK) else None


class BadModel(ValueError):
    """A GGUF file that must not be given to Ollama, and why."""


# The tiny llama: a byte-fallback SentencePiece vocabulary (so any text tokenizes), two layers.
EMBED, LAYERS, HEADS, FFN, CONTEXT = 64, 2, 4, 128, 512
WORDS = ("▁the", "▁bee", "▁hive", "▁honey", "▁file", "▁a", "▁is", "▁and", "▁of", "▁to")


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    pieces = ["▁", *"abcdefghijklmnopqrstuvwxyz", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", *".,:;!?-_/()<>=\"'", *WORDS]
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def write_tiny_model(path: Path, *, seed: int = 19) -> Path:
    """A llama GGUF with random weights (`seed`), written the same way every time."""
    tokens, scores, types = _vocabulary()
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.08).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("bzzz-tiny")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(EMBED)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(EMBED // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_tensor("token_embd.weight", weights(len(tokens), EMBED))
    for i in range(LAYERS):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(EMBED, np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weights(EMBED, EMBED))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(EMBED, np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weights(FFN, EMBED))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weights(FFN, EMBED))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weights(EMBED, FFN))
    writer.add_tensor("output_norm.weight", np.ones(EMBED, np.float32))
    writer.add_tensor("output.weight", weights(len(tokens), EMBED))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_malformed_model(path: Path) -> Path:
    """The tiny model with its first metadata key claiming 2**62 bytes: `ollama create` of it
    makes `ollama serve` panic (a `makeslice` in its GGUF decoder, in a goroutine nothing
    recovers), which takes the whole server down, every model it serves with it."""
    write_tiny_model(path)
    with path.open("r+b") as file:
        file.seek(24)  # magic, version, tensor count, key count: then the first key's length
        file.write(struct.pack("<Q", 1 << 62))
    return path


def _scalar(reader: gguf.GGUFReader, key: str) -> int | float | str | None:
    field = reader.get_field(key)
    if field is None:
        return None
    value = field.contents()
    return value if isinstance(value, int | float | str) else None


def check_gguf(path: Path) -> None:
    """Raise `BadModel` (one line: why) for a file Ollama must not be given; return if it may."""
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as err:  # the reader's errors are many (ValueError, struct, mmap): all mean "not a GGUF"
        raise BadModel(f"{path.name}: not a readable GGUF file ({type(err).__name__}: {err})") from None
    arch = _scalar(reader, "general.architecture")
    if not isinstance(arch, str) or not arch:
        raise BadModel(f"{path.name}: no general.architecture")
    numbers = {}
    for key in ("block_count", "embedding_length", "attention.head_count", "context_length"):
        value = _scalar(reader, f"{arch}.{key}")
        if not isinstance(value, int) or value <= 0:
            raise BadModel(f"{path.name}: {arch}.{key} is {value!r}, not a positive number")
        numbers[key] = value
    heads = numbers["attention.head_count"]
    kv_heads = _scalar(reader, f"{arch}.attention.head_count_kv") or heads
    if not isinstance(kv_heads, int) or kv_heads <= 0 or heads % kv_heads:
        raise BadModel(f"{path.name}: {kv_heads!r} key/value heads do not divide {heads} heads")
    if not reader.get_field(f"{arch}.attention.key_length") and numbers["embedding_length"] % heads:
        raise BadModel(f"{path.name}: {heads} heads do not divide the embedding of {numbers['embedding_length']}")
    names = {t.name for t in reader.tensors}
    missing = [f"blk.{i}" for i in range(numbers["block_count"]) if not any(n.startswith(f"blk.{i}.") for n in names)]
    if missing or "token_embd.weight" not in names:
        raise BadModel(f"{path.name}: tensors missing for {', '.join(missing[:3]) or 'token_embd.weight'}")
    size = path.stat().st_size
    for tensor in reader.tensors:
        if tensor.data_offset + tensor.n_bytes > size:
            raise BadModel(f"{path.name}: tensor {tensor.name} runs past the end of the file")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(ollama: Path, models: Path, home: Path) -> Iterator[Server]:
    """`ollama serve` on a free port with its models in `models` (and its key in `home`),
    answering `/api/version` before this yields; stopped (or found dead) at the end."""
    port = free_port()
    env = {
        **os.environ,
        "HOME": str(home),  # its identity key goes there, not into the user's ~/.ollama
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_MODELS": str(models),
        "OLLAMA_NOPRUNE": "1",  # a server sharing the cached models dir must not delete blobs
        "OLLAMA_NUM_PARALLEL": "1",
    }
    home.mkdir(parents=True, exist_ok=True)
    models.mkdir(parents=True, exist_ok=True)
    log = home / "ollama.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ollama), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(f"http://127.0.0.1:{port}", process, log, env)
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"ollama serve exited ({process.returncode}):\n{server.output()[-2000:]}")
            try:
                return httpx.get(f"{server.url}/api/version", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 120, "ollama serve to answer")
        yield server
    finally:
        # Its model runners are in its process group, and outlive a server that crashed.
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # nobody left in it


def runners_left(server: Server) -> bool:
    """Whether anything of `server`'s process group (its model runners) still runs."""
    try:
        os.killpg(server.process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def import_model(server: Server, ollama: Path, name: str, model: Path, *, check: bool = True) -> None:
    """`ollama create name` from `model` (checked first unless `check=False`: the tests' way of
    feeding Ollama a bad file on purpose). Raises `BadModel` or CalledProcessError."""
    if check:
        check_gguf(model)
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / "model.gguf"
        os.symlink(model.absolute(), local)
        (Path(folder) / "Modelfile").write_text(
            "FROM ./model.gguf\n"
            # Bounded answers: a random model never stops by itself.
            "PARAMETER num_predict 48\n"
            f"PARAMETER num_ctx {CONTEXT}\n"
        )
        subprocess.run(
            [str(ollama), "create", name, "-f", "Modelfile"],
            cwd=folder,
            env=server.env,
            check=True,
            capture_output=True,
            timeout=600,
        )


def listed(server: Server) -> list[str]:
    return [m["model"] for m in httpx.get(f"{server.url}/api/tags", timeout=30).json()["models"]]


def ensure_tiny(server: Server, ollama: Path) -> None:
    """The tiny model imported into `server`'s models dir, if it is not there yet."""
    if TINY not in listed(server):
        with tempfile.TemporaryDirectory() as folder:
            import_model(server, ollama, TINY, write_tiny_model(Path(folder) / "tiny.gguf"))


def gemma_file() -> Path | None:
    """The Gemma 3 270M GGUF of the `model` extra (`make model`), if installed."""
    try:
        from bzzz.executor.ollama_server import embedded_gemma_path

        return Path(embedded_gemma_path())
    except Exception:  # not installed: only the tiny model is imported
        return None


def prepare() -> int:
    """Import the tiny model (and Gemma 3 270M, where installed) into MODELS; idempotent."""
    ollama = binary()
    if ollama is None:
        print(f"ollama: not built at {CACHE / 'ollama'} (tools/build/ollama.sh)", file=sys.stderr)
        return 1
    wanted = {TINY: None, GEMMA: gemma_file()}
    with tempfile.TemporaryDirectory() as home, serve(ollama, MODELS, Path(home)) as server:
        have = set(listed(server))
        for name, source in wanted.items():
            if name in have:
                print(f"ollama: {name} (cached)")
                continue
            if name == TINY:
                source = write_tiny_model(Path(home) / "tiny.gguf")
            if source is None:
                print(f"ollama: {name} left out (its GGUF is installed by `make model`)")
                continue
            try:
                import_model(server, ollama, name, source)
            except BadModel as err:
                print(f"ollama: {name} not imported: {err}", file=sys.stderr)
                return 1
            print(f"ollama: {name} imported from {source}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["prepare"]:
        sys.exit("usage: python -m tests.ollama prepare")
    sys.exit(prepare())
