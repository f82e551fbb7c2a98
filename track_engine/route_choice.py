"""How a route's paths are chosen: the chooser protocols, the default chooser, warming it.

Step 2 of :func:`track_engine.routes.build_route`. A :class:`PathChooser` picks the road path
of one pair of consecutive passages; a :class:`RouteChooser` decodes a whole route at once.
The default, :data:`choose_path`, is :class:`track_engine.paths.NegativeEvidenceChooser`
(time consistency plus negative evidence), which also says how sure each choice is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from track_engine.paths import NegativeEvidenceChooser
from track_engine.roads import ReaderPaths, RoadGraph
from track_engine.stretch_confidence import StretchConfidence

__all__ = ["PathChooser", "RouteChooser", "choose_path", "choose_paths", "warm_path_choice"]


class PathChooser(Protocol):
    """Picks the road path between two consecutive passages; None when there is none."""

    def __call__(
        self,
        from_reader: str,
        to_reader: str,
        *,
        start_us: int,
        end_us: int,
        graph: RoadGraph,
        reader_nodes: Mapping[str, int],
        reader_paths: ReaderPaths,
    ) -> list[int] | None: ...


@runtime_checkable
class RouteChooser(Protocol):
    """A chooser that decodes a whole route at once (evidence at a passage couples the
    segments on both sides of it), e.g. :class:`track_engine.paths.NegativeEvidenceChooser`.
    """

    def choose_route(
        self,
        readers: Sequence[str],
        times_us: Sequence[int],
        directions: Sequence[str],
        reader_paths: ReaderPaths,
        *,
        heard: Sequence[frozenset[str]] | None = None,
    ) -> list[list[int] | None]:
        """One path per consecutive pair; ``heard[k]``: other readers that heard the bike at
        passage ``k`` (merged into it), never silent on the paths next to it."""
        ...


# The default path chooser: time consistency plus negative evidence (see track_engine.paths).
choose_path: PathChooser = NegativeEvidenceChooser()


def warm_path_choice(reader_paths: ReaderPaths, chooser: PathChooser = choose_path) -> int:
    """Compute ``chooser``'s shortest-path trees from every reader now rather than in the
    first routes that need them; returns the readers warmed (0 for a chooser without trees)."""
    if isinstance(chooser, NegativeEvidenceChooser):
        return chooser.candidates_for(reader_paths).warm()
    return 0


def choose_paths(
    chooser: PathChooser,
    passages: pd.DataFrame,
    raw_directions: list[Any],
    kept: NDArray[np.intp],
    readers: list[str],
    times: NDArray[np.int64],
    graph: RoadGraph,
    reader_nodes: Mapping[str, int],
    reader_paths: ReaderPaths,
    heard: list[frozenset[str]],
) -> tuple[list[list[int] | None], list[StretchConfidence | None]]:
    """The path of every segment (jointly when the chooser can, else pair by pair) and how
    sure each is (all None for a chooser that does not say)."""
    if isinstance(chooser, RouteChooser):
        if all(type(d) is str for d in raw_directions):
            every = raw_directions
        else:  # missing values: exactly what pandas makes of them
            every = passages["direction"].fillna("").astype(str).tolist()
        directions = [every[i] for i in kept.tolist()]
        if isinstance(chooser, NegativeEvidenceChooser):
            return chooser.choose_route_with_confidence(
                readers,
                times.tolist(),
                directions,
                reader_paths,
                heard=heard if any(heard) else None,
            )
        if any(heard):
            paths = chooser.choose_route(
                readers, times.tolist(), directions, reader_paths, heard=heard
            )
        else:
            paths = chooser.choose_route(readers, times.tolist(), directions, reader_paths)
        return paths, [None] * len(paths)
    paths = [
        chooser(
            readers[i], readers[i + 1], start_us=int(times[i]), end_us=int(times[i + 1]),
            graph=graph, reader_nodes=reader_nodes, reader_paths=reader_paths,
        )
        for i in range(len(readers) - 1)
    ]  # fmt: skip
    return paths, [None] * len(paths)
