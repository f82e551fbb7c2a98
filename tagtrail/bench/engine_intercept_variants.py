"""The variants :mod:`tagtrail.bench.engine_intercept` scores on the same cases beside the
product's answer: heading weights, horizons, blend pseudo-counts and ETA windows (the
comparison behind the product's defaults, docs/accuracy.md "Intercept")."""

from __future__ import annotations

from track_engine.intercept import Heading
from track_engine.next_readers import Blend, EtaWindow
from track_engine.where_now import SpeedModel

# The road model's heading weights compared (back, straight on); "heading" is the product's.
HEADINGS: dict[str, tuple[float, float]] = {
    "heading": (Heading(None).back, Heading(None).straight),
    "heading_straight1": (0.1, 1.0),
    "heading_straight2": (0.1, 2.0),
    "heading_straight3": (0.1, 3.0),
    "heading_straight2_back0": (0.0, 2.0),
    "heading_straight2_back0.3": (0.3, 2.0),
}
# Horizons compared (the product's heading).
HORIZONS = (600.0, 1500.0, 2500.0)
BLEND = Blend(heading_only=False)  # the levels fleet, fleet+heading, blend: all counts
# Pseudo-counts compared (road, fleet, own) on the same cases.
BLENDS = {
    "blend_1": Blend(1.0, 1.0, 1.0, heading_only=False),
    "blend_10": Blend(10.0, 10.0, 10.0, heading_only=False),
    "blend_road10": Blend(10.0, 3.0, 3.0, heading_only=False),
    "blend_road1": Blend(1.0, 3.0, 3.0, heading_only=False),
    "blend_own10": Blend(3.0, 10.0, 10.0),
    "heading_only_3": Blend(3.0, 3.0, 3.0, heading_only=True),
    "heading_only_10": Blend(3.0, 10.0, 3.0, heading_only=True),
    "heading_only_30": Blend(3.0, 30.0, 3.0, heading_only=True),
    "blend_road30": Blend(30.0, 3.0, 3.0, heading_only=False),
}
WINDOW = EtaWindow()  # what predict_next_readers draws with
# ETA windows compared on the same cases: name -> how it is drawn.
WINDOWS: dict[str, EtaWindow] = {
    "speed_10_32": EtaWindow(min_count=10**9, speeds=SpeedModel(), slack_s=0.0),
    "speed_8_36": EtaWindow(
        min_count=10**9, speeds=SpeedModel(min_kmh=8.0, max_kmh=36.0), slack_s=0.0
    ),
    "speed_6_40": EtaWindow(
        min_count=10**9, speeds=SpeedModel(min_kmh=6.0, max_kmh=40.0), slack_s=0.0
    ),
    "fleet_p10_p90": EtaWindow(widen_low=1.0, widen_high=1.0, slack_s=0.0),
    "fleet_x0.8_1.25": EtaWindow(widen_low=0.8, widen_high=1.25, slack_s=0.0),
    "fleet_x0.7_1.4": EtaWindow(widen_low=0.7, widen_high=1.4, slack_s=0.0),
    "fleet_x0.6_1.6": EtaWindow(widen_low=0.6, widen_high=1.6, slack_s=0.0),
    "fleet_x0.7_1.4_else_8_36": EtaWindow(
        speeds=SpeedModel(min_kmh=8.0, max_kmh=36.0), slack_s=0.0
    ),
    "fleet_x0.8_1.25_else_8_36": EtaWindow(
        widen_low=0.8, widen_high=1.25, speeds=SpeedModel(min_kmh=8.0, max_kmh=36.0), slack_s=0.0
    ),
    "fleet10_x0.8_1.25_else_8_36": EtaWindow(
        min_count=10,
        widen_low=0.8,
        widen_high=1.25,
        speeds=SpeedModel(min_kmh=8.0, max_kmh=36.0),
        slack_s=0.0,
    ),
    "speed_9_34": EtaWindow(
        min_count=10**9, speeds=SpeedModel(min_kmh=9.0, max_kmh=34.0), slack_s=0.0
    ),
    "fleet10_x0.8_1.25_else_9_34": EtaWindow(
        min_count=10,
        widen_low=0.8,
        widen_high=1.25,
        speeds=SpeedModel(min_kmh=9.0, max_kmh=34.0),
        slack_s=0.0,
    ),
    "fleet10_x0.8_1.25_else_9_34_pm10": EtaWindow(
        min_count=10,
        widen_low=0.8,
        widen_high=1.25,
        slack_s=10.0,
        speeds=SpeedModel(min_kmh=9.0, max_kmh=34.0),
    ),
    "fleet10_x0.9_1.1_else_10_32_pm10": EtaWindow(
        min_count=10,
        widen_low=0.9,
        widen_high=1.1,
        slack_s=10.0,
        speeds=SpeedModel(),
    ),
    "fleet10_x0.9_1.1_else_10_32_pm15": EtaWindow(
        min_count=10,
        widen_low=0.9,
        widen_high=1.1,
        slack_s=15.0,
        speeds=SpeedModel(),
    ),
    "speed_10_32_pm10": EtaWindow(min_count=10**9, slack_s=10.0, speeds=SpeedModel()),
    "speed_10_32_pm15": EtaWindow(min_count=10**9, slack_s=15.0, speeds=SpeedModel()),
    "fleet10_x0.9_1.15_else_9_34": EtaWindow(
        min_count=10,
        widen_low=0.9,
        widen_high=1.15,
        speeds=SpeedModel(min_kmh=9.0, max_kmh=34.0),
        slack_s=0.0,
    ),
}
