#!/usr/bin/env node
'use strict'

// The JavaScript side of Bzzz's interop test: builds and verifies Hypercore logs
// with the real npm `hypercore` (pinned in package.json), so the Python tests in
// tests/interop can check that the Rust log is byte-compatible with it.
//
// Usage: node hc.js <command>, one JSON object on stdin, one JSON object on
// stdout. Every byte string is lowercase hex.
//
//   build             {"seed", "batches": [[hex...]...], "proofs": [i...], "compat"?: true}
//                     -> {"key", "discoveryKey", "publicKey", "compat", "manifest",
//                         "length", "byteLength", "treeHash", "signature", "fork",
//                         "proofs": [proof...], "blocks": [hex...]}
//   build-many        {"builds": [build's input...]} -> {"results": [build's answer...]}
//                     (one Node process, one core after another)
//   verify            {"key", "proof"} -> {"ok": true, "value", "length", "treeHash"}
//                                       | {"ok": false, "error"}
//   verify-many       {"key", "proofs": [proof...]} -> {"results": [verify's answer...]}
//                     (one Node process, a fresh reader for each proof)
//   verify-signature  {"publicKey", "treeHash", "length", "fork", "signature", "compat"?: true}
//                     -> {"ok": bool, "key", "error"?}
//   verify-signatures {"checks": [verify-signature's input...]}
//                     -> {"results": [verify-signature's answer...]}
//   bench-append      {"count", "size", "batch"?: 1, "compat"?: true}: `count` signed
//                     append calls of `batch` entries of `size` bytes each (batch 1:
//                     `core.append(buf)`)
//                     -> {"count", "size", "batch", "compat", "entries", "seconds",
//                         "appends_per_sec" (calls/s), "entries_per_sec"}
//
// (`verify` and `verify-many` also take the key as "publicKey", their old name,
// which in compat mode is what the key is.)
//
// A proof is hypercore's own proof object (lib/merkle-tree.js) for block i with an
// upgrade from 0 to the signed length:
//   {fork, block: {index, value, nodes: [{index, size, hash}]}, hash: null, seek: null,
//    upgrade: {start: 0, length, nodes: [...], additionalNodes: [], signature}, manifest}
//
// Two modes, chosen by "compat" when the writer is made (`{ keyPair, compat }`):
//
// - compat (`compat: true`, the default here for old callers): the key is the
//   writer's public key, "manifest" is null, and each signature is a raw 64-byte
//   ed25519 signature over caps.treeSignableCompat(treeHash, length, fork).
// - manifest mode (`compat: false`, hypercore 11's own default for
//   `new Hypercore(dir, { keyPair })`): the core gets the v1 manifest
//   Verifier.defaultSignerManifest(publicKey); the key is its hash
//   (Verifier.manifestHash), "manifest" is its compact encoding
//   (core.getManifest({ raw: true }) = c.encode(messages.manifest, m)), and each
//   signature is ed25519 over caps.treeSignable(key, treeHash, length, fork)
//   (112 bytes), stored as the 68-byte multisig encoding (Verifier.sign ->
//   multisig.assemble: 1 proof {signer 0, signature, patch 0}, no patch nodes).
//
// In a proof, "manifest" is null in compat mode and in manifest mode the manifest
// object, byte fields as hex:
//   {version, hash, allowPatch, quorum, signers: [{signature, namespace, publicKey}],
//    prologue, linked, userData}
// That is what a replicating hypercore peer sends when asked (lib/replicator.js:
// `msg.manifest && !this.core.compat ? this.core.header.manifest : null`, put into
// the proof by ProofRequest.fulfill). Session.proof itself always answers
// `manifest: null` (MerkleTree proof settle()), so `build` adds it the same way.
// A reader that knows only the key needs it: without a stored manifest,
// Core._verifyBatchUpgrade accepts a proof's manifest only if it hashes to the key
// (or is compat for it), and falls back to a compat signer for the key itself,
// which cannot verify a manifest-mode signature.
//
// Exit status: 0 when a result was printed (including {"ok": false}); 2 on usage
// errors (unknown command, stdin not JSON, missing or malformed arguments).

const fs = require('fs')
const os = require('os')
const path = require('path')

const Hypercore = require('hypercore')
const { MerkleTree } = require('hypercore/lib/merkle-tree.js')
const caps = require('hypercore/lib/caps.js')
const Verifier = require('hypercore/lib/verifier.js')
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

const bytesToJSON = (buf) => (buf === null || buf === undefined ? null : toHex(buf))

// hypercore's manifest object (Verifier.createManifest's shape) with hex bytes.
function manifestToJSON(m) {
  if (m === null || m === undefined) return null
  return {
    version: m.version,
    hash: m.hash,
    allowPatch: m.allowPatch,
    quorum: m.quorum,
    signers: m.signers.map((s) => ({
      signature: s.signature,
      namespace: toHex(s.namespace),
      publicKey: toHex(s.publicKey)
    })),
    prologue: m.prologue ? { hash: toHex(m.prologue.hash), length: m.prologue.length } : null,
    linked: m.linked ? m.linked.map(toHex) : null,
    userData: bytesToJSON(m.userData)
  }
}

// The inverse of manifestToJSON. Only types are checked: whether the manifest is
// acceptable (hashes to the key, is one hypercore can use) is for hypercore to say.
function manifestFromJSON(m, what) {
  if (m === null || m === undefined) return null
  if (!isObject(m)) throw new UsageError(`${what}: expected an object or null`)
  const str = (v, w) => {
    if (typeof v !== 'string') throw new UsageError(`${w}: expected a string`)
    return v
  }
  const orNull = (v, fn) => (v === null || v === undefined ? null : fn(v))
  if (!Array.isArray(m.signers)) throw new UsageError(`${what}.signers: expected an array`)
  if (typeof m.allowPatch !== 'boolean') {
    throw new UsageError(`${what}.allowPatch: expected a boolean`)
  }
  return {
    version: uint(m.version, `${what}.version`),
    hash: str(m.hash, `${what}.hash`),
    allowPatch: m.allowPatch,
    quorum: uint(m.quorum, `${what}.quorum`),
    signers: m.signers.map((s, i) => {
      const w = `${what}.signers[${i}]`
      if (!isObject(s)) throw new UsageError(`${w}: expected an object`)
      return {
        signature: str(s.signature, `${w}.signature`),
        namespace: fromHex(s.namespace, `${w}.namespace`, 32),
        publicKey: fromHex(s.publicKey, `${w}.publicKey`, 32)
      }
    }),
    prologue: orNull(m.prologue, (p) => {
      if (!isObject(p)) throw new UsageError(`${what}.prologue: expected an object or null`)
      return {
        hash: fromHex(p.hash, `${what}.prologue.hash`, 32),
        length: uint(p.length, `${what}.prologue.length`)
      }
    }),
    linked: orNull(m.linked, (l) => {
      if (!Array.isArray(l)) throw new UsageError(`${what}.linked: expected an array or null`)
      return l.map((k, i) => fromHex(k, `${what}.linked[${i}]`, 32))
    }),
    userData: orNull(m.userData, (u) => fromHex(u, `${what}.userData`))
  }
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
    manifest: manifestToJSON(p.manifest)
  }
}

// The inverse of proofToJSON, for the proofs this tool deals in: a block proof with
// an upgrade and maybe a manifest, nothing else. Malformed input throws UsageError
// (reported as a rejected proof by `verify`).
function proofFromJSON(p) {
  if (!isObject(p)) throw new UsageError('proof: expected an object')
  if (!isObject(p.block)) throw new UsageError('proof.block: expected an object')
  if (!isObject(p.upgrade)) throw new UsageError('proof.upgrade: expected an object')
  for (const k of ['hash', 'seek']) {
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
    manifest: manifestFromJSON(p.manifest, 'proof.manifest')
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

// A writer in compat mode (key = public key, raw ed25519 signatures over
// caps.treeSignableCompat) or, with compat false, in hypercore's default manifest
// mode (see the header comment). `compat: false` is what a session passes when the
// option is left out (index.js: `compat: opts.compat === true`).
function writerOptions(seed, compat) {
  return { keyPair: crypto.keyPair(seed), compat }
}

function flag(value, what, otherwise) {
  if (value === undefined) return otherwise
  if (typeof value !== 'boolean') throw new UsageError(`${what}: expected true or false`)
  return value
}

// The key a reader is made with: "key", or "publicKey" as old callers name it.
function readerKey(input) {
  if (input.key !== undefined && input.publicKey !== undefined) {
    throw new UsageError('give the key as "key" or as "publicKey", not both')
  }
  return input.key !== undefined
    ? fromHex(input.key, 'key', 32)
    : fromHex(input.publicKey, 'publicKey', 32)
}

// --- commands ----------------------------------------------------------------------

async function build(input) {
  const seed = fromHex(input.seed, 'seed', 32)
  const compat = flag(input.compat, 'compat', true)
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
    withCore(dir, writerOptions(seed, compat), async (core) => {
      if (core.core.compat !== compat) {
        throw new Error(`asked for compat ${compat}, hypercore made compat ${core.core.compat}`)
      }
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
        // What the replicator adds for a peer that asks for the manifest
        // (lib/replicator.js, see the header comment): the core's manifest
        // unless it is in compat mode.
        p.manifest = core.core.compat ? null : core.core.header.manifest
        proofs.push(proofToJSON(p))
      }

      const blocks = []
      for (let i = 0; i < core.length; i++) blocks.push(toHex(await core.get(i)))

      return {
        key: toHex(core.key),
        discoveryKey: toHex(core.discoveryKey),
        publicKey: toHex(core.keyPair.publicKey),
        compat: core.core.compat,
        // c.encode(messages.manifest, core.manifest); hypercore keeps a manifest
        // in compat mode too (the same default signer manifest, stored in its
        // header), but there the key is not its hash and it is not sent.
        manifest: core.core.compat ? null : toHex(core.getManifest({ raw: true })),
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

// `build` for many logs in one Node process (start-up costs more than a build).
async function buildMany(input) {
  if (!Array.isArray(input.builds)) throw new UsageError('builds: expected an array')
  const results = []
  for (let i = 0; i < input.builds.length; i++) {
    if (!isObject(input.builds[i])) throw new UsageError(`builds[${i}]: expected an object`)
    results.push(await build(input.builds[i]))
  }
  return { results }
}

async function verify(input) {
  const key = readerKey(input)
  if (input.proof === undefined) throw new UsageError('proof: missing')
  return verifyOne(key, input.proof)
}

// `verify` for many proofs in one Node process (start-up costs more than a
// verification); each proof still goes to its own fresh reader.
async function verifyMany(input) {
  const key = readerKey(input)
  if (!Array.isArray(input.proofs)) throw new UsageError('proofs: expected an array of proofs')
  // A few readers at a time: most of a verification is opening and closing the
  // reader's RocksDB, which overlaps well.
  const results = new Array(input.proofs.length)
  let next = 0
  const worker = async () => {
    while (next < results.length) {
      const i = next++
      results[i] = await verifyOne(key, input.proofs[i])
    }
  }
  await Promise.all(Array.from({ length: VERIFY_CONCURRENCY }, worker))
  return { results }
}

async function verifyOne(key, json) {
  let proof
  try {
    proof = proofFromJSON(json)
  } catch (err) {
    if (err instanceof UsageError) return { ok: false, error: 'malformed proof: ' + err.message }
    throw err
  }

  return withTempDir((dir) =>
    // A reader that knows only the key: no key pair, no manifest. Its header has
    // no manifest, so Core._verifyBatchUpgrade takes the proof's manifest if it
    // hashes to the key (manifest mode) and otherwise a compat signer for the key
    // itself (compat mode); with a good proof it then stores that manifest.
    withCore(dir, key, async (reader) => {
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

// compat: hypercore-crypto's ed25519 check over caps.treeSignableCompat, as
// CompatSigner.verify does it. Manifest mode: hypercore's own Verifier for the
// default signer manifest of `publicKey` (Verifier.fromManifest), given the
// signature in its stored multisig form; Verifier.verify inflates it
// (multisig.inflate) and checks the ed25519 signature of signer 0 over
// batch.signable(manifestHash) = caps.treeSignable(manifestHash, treeHash,
// length, fork), the same call Core._verifyBatchUpgrade makes for a proof.
function verifySignature(input) {
  const publicKey = fromHex(input.publicKey, 'publicKey', 32)
  const treeHash = fromHex(input.treeHash, 'treeHash', 32)
  const length = uint(input.length, 'length')
  const fork = uint(input.fork === undefined ? 0 : input.fork, 'fork')
  const signature = fromHex(input.signature, 'signature')
  const compat = flag(input.compat, 'compat', true)

  if (compat) {
    const signable = caps.treeSignableCompat(treeHash, length, fork)
    return {
      ok: signature.byteLength === 64 && crypto.verify(signable, signature, publicKey),
      key: toHex(publicKey)
    }
  }

  const verifier = Verifier.fromManifest(Verifier.defaultSignerManifest(publicKey))
  // The parts of a tree batch (lib/merkle-tree.js MerkleTreeBatch) a Verifier uses.
  const batch = {
    fork,
    length,
    hash: () => treeHash,
    signable: (manifestHash) => caps.treeSignable(manifestHash, treeHash, length, fork)
  }
  const key = toHex(verifier.manifestHash)
  try {
    return { ok: verifier.verify(batch, signature), key }
  } catch (err) {
    // A signature that is not a multisig encoding makes the decoder throw.
    return { ok: false, key, error: err.message || String(err) }
  }
}

function verifySignatures(input) {
  if (!Array.isArray(input.checks)) throw new UsageError('checks: expected an array')
  return {
    results: input.checks.map((check, i) => {
      if (!isObject(check)) throw new UsageError(`checks[${i}]: expected an object`)
      return verifySignature(check)
    })
  }
}

async function benchAppend(input) {
  const count = uint(input.count, 'count')
  const size = uint(input.size, 'size')
  const batch = uint(input.batch === undefined ? 1 : input.batch, 'batch')
  if (batch < 1) throw new UsageError('batch: expected at least 1')
  const compat = flag(input.compat, 'compat', true)

  // `count` append calls, each of `batch` entries of `size` bytes, each call signed.
  const entries = []
  for (let i = 0; i < batch; i++) entries.push(Buffer.alloc(size, i & 0xff))
  const value = batch === 1 ? entries[0] : entries

  return withTempDir((dir) =>
    withCore(dir, writerOptions(Buffer.alloc(32, 7), compat), async (core) => {
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
        compat,
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
  'build-many': buildMany,
  verify,
  'verify-many': verifyMany,
  'verify-signature': verifySignature,
  'verify-signatures': verifySignatures,
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
