"""Counter-based random numbers: every draw is a hash of the seed, a stream and its own keys.

A sequential generator gives a draw that depends on how many draws came before it, so a run
split into chunks of bikes would change with the chunk size. Here a draw is a pure function of
``(seed, stream, key columns)`` — e.g. (bike, reader, time) for a read — so the same bike gets
the same numbers whichever chunk or worker process computes it, and the draws stay vectorized.

The hash is SplitMix64's finalizer (Steele, Lea and Flood, 2014) applied once per key column;
it passes BigCrush as a counter-based generator, which is plenty for a simulation. Streams are
small integers, one per draw site, so two draws with the same keys at different sites differ.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_PAIRED = 1 << 20  # the second uniform of a normal draws from stream + _PAIRED
_POISSON_TAIL = 1e-15  # inverse-CDF Poisson stops once this little probability is left


def _mix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _as_u64(values: ArrayLike) -> NDArray[np.uint64]:
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        raise TypeError("keys must be integers")
    return arr.astype(np.int64, copy=False).view(np.uint64)


class Hashed:
    """Key columns hashed once (:meth:`KeyedRandom.key`), for several draws with the same keys."""

    def __init__(self, h: NDArray[np.uint64]) -> None:
        """Wrap a hash column."""
        self.h = h


class KeyedRandom:
    """Draws keyed by integer columns; ``uniform(stream, bike, t)`` is one draw per row."""

    def __init__(self, seed: int) -> None:
        """``seed`` is any integer (negative and huge ones are folded into 64 bits)."""
        self._base = _mix(np.array([seed & 0xFFFF_FFFF_FFFF_FFFF], np.uint64))[0]

    def key(self, *keys: ArrayLike) -> Hashed:
        """The hash of the broadcast ``keys``, to pass instead of them to several draws."""
        with np.errstate(over="ignore"):
            h = np.asarray(self._base, np.uint64)
            for k, column in enumerate(keys):
                salt = np.uint64((k + 1) * 0x632BE59BD9B4E019 & 0xFFFF_FFFF_FFFF_FFFF)
                h = _mix(h ^ _mix(_as_u64(column) + salt))
        return Hashed(np.asarray(h, np.uint64))

    def bits(self, stream: int, *keys: ArrayLike | Hashed) -> NDArray[np.uint64]:
        """64 random bits per row of the broadcast ``keys`` (or of one :class:`Hashed`)."""
        columns = [k for k in keys if not isinstance(k, Hashed)]
        if len(columns) == len(keys):
            hashed = self.key(*columns)
        elif len(keys) == 1 and isinstance(keys[0], Hashed):
            hashed = keys[0]
        else:
            raise TypeError("pass key columns or one Hashed, not both")
        with np.errstate(over="ignore"):
            salt = _mix(np.asarray(self._base ^ (np.uint64(stream) * _GOLDEN), np.uint64))
            return np.asarray(_mix(hashed.h ^ salt), np.uint64)

    def uniform(self, stream: int, *keys: ArrayLike | Hashed) -> NDArray[np.float64]:
        """Uniform on [0, 1), 53 bits."""
        return (self.bits(stream, *keys) >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def integers(
        self, stream: int, low: int, high: int, *keys: ArrayLike | Hashed
    ) -> NDArray[np.int64]:
        """Uniform integers in [low, high)."""
        return low + np.floor(self.uniform(stream, *keys) * (high - low)).astype(np.int64)

    def normal(self, stream: int, *keys: ArrayLike | Hashed) -> NDArray[np.float64]:
        """Standard normal (Box-Muller over two keyed uniforms, streams ``stream`` and
        ``stream + _PAIRED``)."""
        u1 = self.uniform(stream, *keys)
        u2 = self.uniform(stream + _PAIRED, *keys)
        return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)

    def poisson(self, stream: int, lam: float, *keys: ArrayLike | Hashed) -> NDArray[np.int64]:
        """Poisson(``lam``) by inverting the CDF; meant for the small rates of a read model."""
        u = self.uniform(stream, *keys)
        count = np.zeros(u.shape, np.int64)
        if lam <= 0:
            return count
        p = cdf = float(np.exp(-lam))
        k = 0
        while cdf < 1.0 - _POISSON_TAIL and k < 10_000:
            count += u >= cdf
            k += 1
            p *= lam / k
            cdf += p
        return count
