#!/usr/bin/env node
'use strict'

// The JavaScript side of Bzzz's interop test: builds and verifies Hypercore logs
// with the real npm `hypercore` (pinned in package.json), so the Python tests in
// tests/interop can check that the Rust log is byte-compatible with it.
//
// Usage: node hc.js <command>, one JSON object on stdin, one JSON object on
// stdout. Every byte string is lowercase hex.
//
//   build             {"seed", "batches": [[hex...]...], "proofs": [i...]}
//                     -> {"key", "discoveryKey", "length", "byteLength", "treeHash",
//                         "signature", "fork", "proofs": [proof...], "blocks": [hex...]}
//   verify            {"publicKey", "proof"} -> {"ok": true, "value", "length", "treeHash"}
//                                             | {"ok": false, "error"}
//   verify-many       {"publicKey", "proofs": [proof...]} -> {"results": [verify's answer...]}
//                     (one Node process, a fresh reader for each proof)
//   verify-signature  {"publicKey", "treeHash", "length", "fork", "signature"} -> {"ok": bool}
//   bench-append      {"count", "size", "batch"?: 1}: `count` signed append calls of
//                     `batch` entries of `size` bytes each (batch 1: `core.append(buf)`)
//                     -> {"count", "size", "batch", "entries", "seconds",
//                         "appends_per_sec" (calls/s), "entries_per_sec"}
//
// A proof is hypercore's own proof object (lib/merkle-tree.js) for block i with an
// upgrade from 0 to the signed length:
//   {fork, block: {index, value, nodes: [{index, size, hash}]}, hash: null, seek: null,
//    upgrade: {start: 0, length, nodes: [...], additionalNodes: [], signature}, manifest: null}
//
// Cores are made in "compat" mode (`compat: true`): the key is the writer's public
// key and each signature is a raw 64-byte ed25519 signature over
// caps.treeSignableCompat(treeHash, length, fork). Note that hypercore 11 does NOT
// do this by default: `new Hypercore(dir, { keyPair })` alone gets a v1 manifest, a
// key that is the manifest's hash and a different signable.
//
// Exit status: 0 when a result was printed (including {"ok": false}); 2 on usage
// errors (unknown command, stdin not JSON, missing or malformed arguments).

const fs = require('fs')
const os = require('os')
const path = require('path')

const Hypercore = require('hypercore')
const { MerkleTree } = require('hypercore/lib/merkle-tree.js')
const caps = require('hypercore/lib/caps.js')
const crypto = require('hypercore-crypto')

class UsageError extends Error {}

const VERIFY_CONCURRENCY = 4

// --- hex and JSON helpers -----------------------------------------------------

const HEX = /^(?:[0-9a-f]{2})*$/

function fromHex(value, what, size = -1) {
  if (typeof value !== 'string' || !HEX.test(value)) {
    throw new UsageError(`${what}: expected a lowercase hex string`)
  }
  const buf = Buffer.from(value, 'hex')
  if (size >= 0 && buf.byteLength !== size) {
    throw new UsageError(`${what}: expected ${size} bytes, got ${buf.byteLength}`)
  }
  return buf
}

const toHex = (buf) => Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('hex')

function uint(value, what) {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new UsageError(`${what}: expected a non-negative integer`)
  }
  return value
}

function isObject(x) {
  return x !== null && typeof x === 'object' && !Array.isArray(x)
}

function nodeToJSON(node) {
  return { index: node.index, size: node.size, hash: toHex(node.hash) }
}

function nodeFromJSON(node, what) {
  if (!isObject(node)) throw new UsageError(`${what}: expected {index, size, hash}`)
  return {
    index: uint(node.index, `${what}.index`),
    size: uint(node.size, `${what}.size`),
    hash: fromHex(node.hash, `${what}.hash`, 32)
  }
}

function nodesFromJSON(nodes, what) {
  if (!Array.isArray(nodes)) throw new UsageError(`${what}: expected an array of nodes`)
  return nodes.map((n, i) => nodeFromJSON(n, `${what}[${i}]`))
}

function proofToJSON(p) {
  return {
    fork: p.fork,
    block: p.block && {
      index: p.block.index,
      value: toHex(p.block.value),
      nodes: p.block.nodes.map(nodeToJSON)
    },
    hash: null,
    seek: null,
    upgrade: p.upgrade && {
      start: p.upgrade.start,
      length: p.upgrade.length,
      nodes: p.upgrade.nodes.map(nodeToJSON),
      additionalNodes: p.upgrade.additionalNodes.map(nodeToJSON),
      signature: toHex(p.upgrade.signature)
    },
    manifest: null
  }
}

// The inverse of proofToJSON, for the proofs this tool deals in: a block proof with
// an upgrade, nothing else. Malformed input throws UsageError (reported as a
// rejected proof by `verify`).
function proofFromJSON(p) {
  if (!isObject(p)) throw new UsageError('proof: expected an object')
  if (!isObject(p.block)) throw new UsageError('proof.block: expected an object')
  if (!isObject(p.upgrade)) throw new UsageError('proof.upgrade: expected an object')
  for (const k of ['hash', 'seek', 'manifest']) {
    if (p[k] !== null && p[k] !== undefined) {
      throw new UsageError(`proof.${k}: only null is supported`)
    }
  }
  const additional = p.upgrade.additionalNodes === undefined ? [] : p.upgrade.additionalNodes
  return {
    fork: uint(p.fork, 'proof.fork'),
    block: {
      index: uint(p.block.index, 'proof.block.index'),
      value: fromHex(p.block.value, 'proof.block.value'),
      nodes: nodesFromJSON(p.block.nodes, 'proof.block.nodes')
    },
    hash: null,
    seek: null,
    upgrade: {
      start: uint(p.upgrade.start, 'proof.upgrade.start'),
      length: uint(p.upgrade.length, 'proof.upgrade.length'),
      nodes: nodesFromJSON(p.upgrade.nodes, 'proof.upgrade.nodes'),
      additionalNodes: nodesFromJSON(additional, 'proof.upgrade.additionalNodes'),
      signature: fromHex(p.upgrade.signature, 'proof.upgrade.signature')
    },
    manifest: null
  }
}

// --- temp dirs -------------------------------------------------------------------

async function withTempDir(fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bzzz-hc-'))
  try {
    return await fn(dir)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function withCore(dir, opts, fn) {
  const core = new Hypercore(dir, opts)
  try {
    await core.ready()
    return await fn(core)
  } finally {
    await core.close()
  }
}

// A writer in compat mode: key = public key, raw ed25519 signatures over
// caps.treeSignableCompat (see the header comment).
function writerOptions(seed) {
  return { keyPair: crypto.keyPair(seed), compat: true }
}

// --- commands ----------------------------------------------------------------------

async function build(input) {
  const seed = fromHex(input.seed, 'seed', 32)
  if (!Array.isArray(input.batches)) throw new UsageError('batches: expected an array of arrays')
  const batches = input.batches.map((batch, i) => {
    if (!Array.isArray(batch) || batch.length === 0) {
      throw new UsageError(`batches[${i}]: expected a non-empty array of hex strings`)
    }
    return batch.map((b, j) => fromHex(b, `batches[${i}][${j}]`))
  })
  const wanted = input.proofs === undefined ? [] : input.proofs
  if (!Array.isArray(wanted)) throw new UsageError('proofs: expected an array of indexes')
  const total = batches.reduce((n, b) => n + b.length, 0)
  wanted.forEach((i, k) => {
    uint(i, `proofs[${k}]`)
    if (i >= total) throw new UsageError(`proofs[${k}]: ${i} is not below the length ${total}`)
  })

  return withTempDir((dir) =>
    withCore(dir, writerOptions(seed), async (core) => {
      // One append call per batch: hypercore signs once per call.
      for (const batch of batches) await core.append(batch)

      const proofs = []
      for (const index of wanted) {
        // Session.proof (index.js) = MerkleTree.proof on the session's state plus
        // the block read from storage; with `nodes: 0` and an upgrade from 0 the
        // proof carries the block's siblings up to its full root and the other
        // full roots of the signed length, as a replicating peer would send it.
        const p = await core.proof({
          block: { index, nodes: 0 },
          upgrade: { start: 0, length: core.length }
        })
        proofs.push(proofToJSON(p))
      }

      const blocks = []
      for (let i = 0; i < core.length; i++) blocks.push(toHex(await core.get(i)))

      return {
        key: toHex(core.key),
        discoveryKey: toHex(core.discoveryKey),
        length: core.length,
        byteLength: core.byteLength,
        treeHash: toHex(await core.treeHash()),
        // The signature of the current length, as the core keeps it (and stores
        // it in its head).
        signature: toHex(core.core.state.signature),
        fork: core.fork,
        proofs,
        blocks
      }
    })
  )
}

async function verify(input) {
  const publicKey = fromHex(input.publicKey, 'publicKey', 32)
  if (input.proof === undefined) throw new UsageError('proof: missing')
  return verifyOne(publicKey, input.proof)
}

// `verify` for many proofs in one Node process (start-up costs more than a
// verification); each proof still goes to its own fresh reader.
async function verifyMany(input) {
  const publicKey = fromHex(input.publicKey, 'publicKey', 32)
  if (!Array.isArray(input.proofs)) throw new UsageError('proofs: expected an array of proofs')
  // A few readers at a time: most of a verification is opening and closing the
  // reader's RocksDB, which overlaps well.
  const results = new Array(input.proofs.length)
  let next = 0
  const worker = async () => {
    while (next < results.length) {
      const i = next++
      results[i] = await verifyOne(publicKey, input.proofs[i])
    }
  }
  await Promise.all(Array.from({ length: VERIFY_CONCURRENCY }, worker))
  return { results }
}

async function verifyOne(publicKey, json) {
  let proof
  try {
    proof = proofFromJSON(json)
  } catch (err) {
    if (err instanceof UsageError) return { ok: false, error: 'malformed proof: ' + err.message }
    throw err
  }

  return withTempDir((dir) =>
    // A reader that knows only the key: no key pair, no manifest. Its header has
    // no manifest, so verification goes through the compat path for the key.
    withCore(dir, publicKey, async (reader) => {
      let applied
      try {
        // Session.applyProof -> Core.verify: the same call the replicator makes
        // for a peer's data message. MerkleTree.verify rebuilds the block's root
        // from the value and its sibling nodes and the signed tree from the
        // upgrade nodes (a root it cannot place, or a block root the upgrade does
        // not use, is an error); Core._verifyBatchUpgrade checks the signature
        // against the key; the block and tree nodes are then stored.
        applied = await reader.applyProof(proof)
      } catch (err) {
        return { ok: false, error: err.message || String(err) }
      }
      if (!applied) return { ok: false, error: 'proof not applied (Core.verify returned false)' }

      const index = proof.block.index
      const value = await reader.get(index, { wait: false })
      if (value === null) return { ok: false, error: `block ${index} not stored after verify` }
      // reader.treeHash() would wait for the last block, which a proof of an
      // earlier block does not carry; this is its hash of the stored roots.
      const roots = await MerkleTree.getRoots(reader.state, reader.length)
      return {
        ok: true,
        value: toHex(value),
        length: reader.length,
        treeHash: toHex(crypto.tree(roots))
      }
    })
  )
}

function verifySignature(input) {
  const publicKey = fromHex(input.publicKey, 'publicKey', 32)
  const treeHash = fromHex(input.treeHash, 'treeHash', 32)
  const length = uint(input.length, 'length')
  const fork = uint(input.fork === undefined ? 0 : input.fork, 'fork')
  const signature = fromHex(input.signature, 'signature')
  const signable = caps.treeSignableCompat(treeHash, length, fork)
  return { ok: signature.byteLength === 64 && crypto.verify(signable, signature, publicKey) }
}

async function benchAppend(input) {
  const count = uint(input.count, 'count')
  const size = uint(input.size, 'size')
  const batch = uint(input.batch === undefined ? 1 : input.batch, 'batch')
  if (batch < 1) throw new UsageError('batch: expected at least 1')

  // `count` append calls, each of `batch` entries of `size` bytes, each call signed.
  const entries = []
  for (let i = 0; i < batch; i++) entries.push(Buffer.alloc(size, i & 0xff))
  const value = batch === 1 ? entries[0] : entries

  return withTempDir((dir) =>
    withCore(dir, writerOptions(Buffer.alloc(32, 7)), async (core) => {
      const start = process.hrtime.bigint()
      for (let i = 0; i < count; i++) await core.append(value)
      const seconds = Number(process.hrtime.bigint() - start) / 1e9
      if (core.length !== count * batch) {
        throw new Error(`appended ${core.length} entries, wanted ${count * batch}`)
      }
      return {
        count,
        size,
        batch,
        entries: count * batch,
        seconds,
        appends_per_sec: count / seconds,
        entries_per_sec: (count * batch) / seconds
      }
    })
  )
}

const COMMANDS = {
  build,
  verify,
  'verify-many': verifyMany,
  'verify-signature': verifySignature,
  'bench-append': benchAppend
}

// --- main --------------------------------------------------------------------------

async function main(argv) {
  const name = argv[0]
  const command = COMMANDS[name]
  if (argv.length !== 1 || !command) {
    throw new UsageError(`usage: node hc.js {${Object.keys(COMMANDS).join('|')}} < input.json`)
  }

  let input
  try {
    input = JSON.parse(fs.readFileSync(0, 'utf8'))
  } catch (err) {
    throw new UsageError(`stdin: expected one JSON object (${err.message})`)
  }
  if (!isObject(input)) throw new UsageError('stdin: expected one JSON object')

  return command(input)
}

main(process.argv.slice(2)).then(
  (result) => {
    process.stdout.write(JSON.stringify(result) + '\n')
  },
  (err) => {
    if (err instanceof UsageError) {
      process.stderr.write(`hc.js: ${err.message}\n`)
      process.exitCode = 2
    } else {
      process.stderr.write(`hc.js: ${err.stack || err}\n`)
      process.exitCode = 1
    }
  }
)
