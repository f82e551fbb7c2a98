"""One chunk of bikes simulated end to end, as compact columns for the writers.

A :class:`World` holds what every chunk shares (roads, readers, the day plan, outages, read
model parameters); :func:`simulate_chunk` plans bikes ``b0 <= bike < b1``, samples their
positions and runs the read model, and returns a :class:`ChunkResult` whose reader and tag
columns are integer codes: reader *rank* (index in sorted reader-id order) and tag code (index
in the plan's sorted tag ids). Codes keep the result small to send between processes and to
sort; strings appear only when files are written.

Because every draw is keyed by bike (see :mod:`simulators.keyed_random`), a chunk's result is
the concatenation of the results its bikes would give in any other chunking; only trip ids are
chunk-local (0, 1, ... in (bike, start) order) and the caller offsets them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from citymap.network import City
from simulators.bike_days import plan_bikes, trajectories
from simulators.day_plan import DayPlan
from simulators.fleet import Theft
from simulators.readers import SimReader
from simulators.rf import RfParams, simulate_reads
from simulators.routing import FlatPaths, Router

POSITION_SEED_OFFSET = 4  # trajectories draw from seed + 4, reads from seed + 100
READ_SEED_OFFSET = 100


@dataclass(frozen=True, eq=False)
class World:
    """What every chunk of a run shares; built once, sent once to each worker process."""

    seed: int
    city: City
    readers: list[SimReader]
    plan: DayPlan
    outages: pd.DataFrame
    params: RfParams

    @property
    def reader_ids(self) -> list[str]:
        """Reader ids in sorted order: a reader's rank is its index here."""
        return sorted(r.reader_id for r in self.readers)


@dataclass(frozen=True, eq=False)
class ChunkResult:
    """Everything bikes ``b0 <= bike < b1`` produced; trip ids are chunk-local.

    ``positions``: trajectories columns with ``tag_id`` as int32 tag codes. ``reads``:
    reader (int16 rank), antenna, tag (int32 code), rssi_dbm, read_at_us, true_at_us, sorted
    by (read_at, reader, antenna, tag). ``passages``: tag (code), bike_id, reader (rank) and
    the :func:`simulators.rf.simulate_reads` passage columns.
    """

    b0: int
    b1: int
    trips: pd.DataFrame
    visits: pd.DataFrame
    thefts: list[Theft]
    positions: pd.DataFrame
    reads: pd.DataFrame
    passages: pd.DataFrame


def simulate_chunk(
    world: World, router: Router, b0: int, b1: int, *, paths: FlatPaths | None = None
) -> ChunkResult:
    """Plan, move and read bikes ``b0 <= bike < b1`` (``paths``: their intentions' paths,
    when already routed)."""
    plan = world.plan
    population = plan_bikes(world.city, router, plan, b0, b1, paths=paths)
    traj = trajectories(world.city, population, seed=world.seed + POSITION_SEED_OFFSET,
                        tags=(plan.tag_names, plan.tag_code))  # fmt: skip
    reads, passages = simulate_reads(
        world.city, world.readers, traj, seed=world.seed + READ_SEED_OFFSET,
        params=world.params, outages=world.outages,
    )  # fmt: skip
    traj["tag_id"] = np.asarray(traj["tag_id"].cat.codes.to_numpy(), np.int32)
    names = plan.tag_names.astype(str)
    ranks = np.array(world.reader_ids, dtype=str)
    return ChunkResult(
        b0, b1, population.trips, population.visits, population.thefts, traj,
        pd.DataFrame({
            "reader": _codes(reads["reader_id"], ranks).astype(np.int16),
            "antenna": reads["antenna"].to_numpy(np.int16),
            "tag": _codes(reads["tag_id"], names).astype(np.int32),
            "rssi_dbm": reads["rssi_dbm"].to_numpy(np.float32),
            "read_at_us": reads["read_at_us"].to_numpy(np.int64),
            "true_at_us": reads["true_at_us"].to_numpy(np.int64),
        }),
        _coded_passages(passages, names, ranks),
    )  # fmt: skip


def _codes(column: pd.Series, universe: NDArray[np.str_]) -> NDArray[np.int64]:
    """Index in ``universe`` (sorted) of each value of a categorical column."""
    if len(column) == 0:  # an empty read model answer has plain string columns
        return np.empty(0, np.int64)
    cats = np.asarray(column.cat.categories, dtype=str)
    at = np.searchsorted(universe, cats)
    return np.asarray(at[column.cat.codes.to_numpy()], np.int64)


def _coded_passages(
    passages: pd.DataFrame, names: NDArray[np.str_], ranks: NDArray[np.str_]
) -> pd.DataFrame:
    """Passages with tag and reader as codes, and fixed dtypes even when there are none."""
    return pd.DataFrame({
        "tag": np.searchsorted(names, passages["tag_id"].to_numpy(str)).astype(np.int32),
        "bike_id": passages["bike_id"].to_numpy(np.int32),
        "reader": np.searchsorted(ranks, passages["reader_id"].to_numpy(str)).astype(np.int16),
        "closest_at_us": passages["closest_at_us"].to_numpy(np.int64),
        "closest_distance_m": passages["closest_distance_m"].to_numpy(np.float64),
        "heard": passages["heard"].to_numpy(bool),
        "enter_at_us": passages["enter_at_us"].to_numpy(np.int64),
        "exit_at_us": passages["exit_at_us"].to_numpy(np.int64),
        "reads": passages["reads"].to_numpy(np.int32),
    })  # fmt: skip
