"""Shared fixtures: one small city, its readers, a population and its trajectories per session."""

from __future__ import annotations

import pandas as pd
import pytest
from sim_helpers import START

from citymap.network import City
from simulators.city import generate_city
from simulators.readers import SimReader, place_readers
from simulators.riders import Population, generate_population, trajectories


@pytest.fixture(scope="session")
def city() -> City:
    return generate_city(seed=11)


@pytest.fixture(scope="session")
def readers(city: City) -> list[SimReader]:
    return place_readers(city, seed=12)


@pytest.fixture(scope="session")
def population(city: City) -> Population:
    return generate_population(city, seed=13, bikes=150, start=START, hours=1.5)


@pytest.fixture(scope="session")
def traj(city: City, population: Population) -> pd.DataFrame:
    return trajectories(city, population, seed=14)
