"""Re-take the console screenshots shown in docs/console.md from the browser tests.

    export TAGTRAIL_TEST_DATABASE_URL=... TAGTRAIL_TEST_MQTT_URL=...
    .venv/bin/python tools/docs_screenshots.py [picture.png ...]

The browser tests (tests/browser/, real Chromium against the real API and PostgreSQL) save
screenshots to test-artifacts/screenshots/; this runs the tests whose pictures the docs show
and copies those pictures to docs/screenshots/ under stable names. A test that fails copies
nothing: the docs never show a desk that did not pass its test. Naming pictures re-takes only
those (and runs only the tests that take them).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS = ROOT / "docs" / "screenshots"
# docs name -> (test file, screenshot the test saves)
PICTURES = {
    "officer-search.png": (
        "tests/browser/test_console.py",
        "test_officer_follows_stolen_bike_live-search.png",
    ),
    "officer-route-live.png": (
        "tests/browser/test_console.py",
        "test_officer_follows_stolen_bike_live-live.png",
    ),
    "officer-missed-eta.png": (
        "tests/browser/test_console_case_sheet.py",
        "test_a_passed_eta_is_missed_and_the_sheet_has_times_and_a_fitted_map-missed-eta.png",
    ),
    "officer-print-sheet.png": (
        "tests/browser/test_console_case_sheet.py",
        "test_a_passed_eta_is_missed_and_the_sheet_has_times_and_a_fitted_map-print-sheet.png",
    ),
    "registration-done.png": (
        "tests/browser/test_console.py",
        "test_registrar_registers_and_meets_conflict-registered.png",
    ),
    "registration-conflict.png": (
        "tests/browser/test_console.py",
        "test_registrar_registers_and_meets_conflict-conflict.png",
    ),
    "registration-photo.png": (
        "tests/browser/test_console_photos.py",
        "test_registrar_adds_a_photo_and_the_officer_sees_it-photo-added.png",
    ),
    "officer-case-photos.png": (
        "tests/browser/test_console_photos.py",
        "test_registrar_adds_a_photo_and_the_officer_sees_it-case-photos.png",
    ),
    "resident-reported.png": (
        "tests/browser/test_console.py",
        "test_resident_reports_theft-reported.png",
    ),
    "desk-history.png": (
        "tests/browser/test_console_desk.py",
        "test_desk_shows_history_and_acknowledges-acknowledged.png",
    ),
    "desk-live.png": (
        "tests/browser/test_console_desk.py",
        "test_desk_shows_history_and_acknowledges-live.png",
    ),
    "desk-overview.png": (
        "tests/browser/test_console_desk_map.py",
        "test_overview_map_follows_a_stolen_bike_live-overview.png",
    ),
    "desk-where-now.png": (
        "tests/browser/test_console_desk_map.py",
        "test_overview_map_shows_where_now_when_switched_on-where-now.png",
    ),
    "desk-acked-elsewhere.png": (
        "tests/browser/test_console_desk_acks_live.py",
        "test_an_acknowledgement_shows_on_the_other_open_desk-acked-elsewhere.png",
    ),
    "notices.png": (
        "tests/browser/test_console_notices.py",
        "test_officer_adds_changes_and_deletes_notice_subscriptions-subscriptions.png",
    ),
    "operator-health.png": (
        "tests/browser/test_console_operator.py",
        "test_operator_sees_health_told_apart_and_unknown_readers-health.png",
    ),
    "operator-unknown-readers.png": (
        "tests/browser/test_console_operator.py",
        "test_operator_sees_health_told_apart_and_unknown_readers-unknown.png",
    ),
    "street-names.png": (
        "tests/browser/test_console_street_names.py",
        "test_case_view_names_readers_and_the_map_its_streets-street-names.png",
    ),
    "audit-routes.png": (
        "tests/browser/test_console_audit.py",
        "test_auditor_searches_the_log-routes.png",
    ),
    "check-stolen.png": (
        "tests/browser/test_console_check.py",
        "test_a_buyer_checks_a_plate_and_a_frame_number_without_an_account-stolen.png",
    ),
}


def main(names: list[str]) -> int:
    """Run the tests of the pictures named (all if none), then copy their screenshots; the
    tests' exit status otherwise."""
    unknown = sorted(set(names) - set(PICTURES))
    if unknown:
        print(f"no such picture: {', '.join(unknown)}", file=sys.stderr)
        return 2
    wanted = {name: PICTURES[name] for name in names} if names else PICTURES
    tests = sorted({test for test, _ in wanted.values()})
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", *tests], cwd=ROOT, check=False)
    if run.returncode != 0:
        print("browser tests failed: docs/screenshots left as they were", file=sys.stderr)
        return run.returncode
    DOCS.mkdir(parents=True, exist_ok=True)
    for name, (_, shot) in wanted.items():
        shutil.copyfile(SHOTS / shot, DOCS / name)
        print(f"docs/screenshots/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
