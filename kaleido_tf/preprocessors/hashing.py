"""Stable hashing: shard assignment, hash splits and per-product random generators.

Everything random in preprocessing is drawn from a generator derived from the run seed and a key
made of the product id and the purpose of the draw (for example `("p0001", "pretrain", 0, 1)`). The
result therefore depends neither on the order of the catalog nor on how it is split into shards, and
a new kind of draw does not disturb the existing ones. Python's built-in `hash()` is salted per
process and is never used.
"""

import hashlib

import numpy as np

SPLITS = ("train", "valid", "test")


def _digest(*keys):
    """SHA-256 over the keys joined by a separator that cannot occur in them (U+001F)."""
    text = "\x1f".join(str(k) for k in keys)
    return hashlib.sha256(text.encode("utf-8")).digest()


def stable_hash64(*keys):
    """A 64-bit unsigned integer from the keys, the same on every machine and Python version."""
    return int.from_bytes(_digest(*keys)[:8], "little")


def unit_interval(*keys):
    """A number in [0, 1) from the keys (53 bits of the hash)."""
    return (stable_hash64(*keys) >> 11) / float(1 << 53)


def derive_rng(seed, *keys):
    """A numpy Generator seeded by `seed` and the keys.

    Example: `derive_rng(7, "p0001", "text")` always yields the same stream, whichever shard or
    process asks for it.
    """
    words = np.frombuffer(_digest(*keys), dtype=np.uint32).tolist()
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    entropy = [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF] + words
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def product_hash(product_id):
    """The 64-bit hash of a product id used for sharding and for the catalog index."""
    return stable_hash64("id", product_id)


def shard_of(product_id, num_shards):
    """The shard a product belongs to: product_hash(id) % num_shards (independent of the seed)."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    return product_hash(product_id) % num_shards


def mix64(values, seed):
    """Seeded 64-bit mixing (splitmix64 finaliser) of a uint64 array: a reproducible random order key."""
    x = np.asarray(values, np.uint64) ^ np.uint64(stable_hash64("mix", seed))
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return x


def hash_split(product_id, seed, valid_fraction, test_fraction):
    """Seeded split for a product without an explicit `split`: 'train', 'valid' or 'test'.

    The product lands in 'test' when u < test_fraction, in 'valid' when u < test_fraction +
    valid_fraction, else in 'train', where u = unit_interval(seed, "split", product_id).
    """
    if not (0.0 <= valid_fraction and 0.0 <= test_fraction and valid_fraction + test_fraction <= 1.0):
        raise ValueError(
            f"valid_fraction ({valid_fraction}) and test_fraction ({test_fraction}) must be >= 0 and sum to at most 1"
        )
    u = unit_interval(seed, "split", product_id)
    if u < test_fraction:
        return "test"
    if u < test_fraction + valid_fraction:
        return "valid"
    return "train"
