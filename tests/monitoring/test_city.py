"""The city's networking rate and compliant share from schools' reports: who counts, and how much."""

from __future__ import annotations

from monitoring.city import SchoolReading, camera_counts, city_table, compliant_share, is_reporting, networking_rate

NOW = 1_000_000.0


def school(
    sid: str, district: str, networked: int, in_service: int, compliant: bool, age: float | None
) -> SchoolReading:
    at = None if age is None else NOW - age
    return SchoolReading(sid, district, at, 30.0, networked, in_service, compliant)


def test_a_school_is_silent_after_three_missed_reports() -> None:
    assert is_reporting(school("1", "东区", 1, 1, True, 89.0), NOW)
    assert not is_reporting(school("1", "东区", 1, 1, True, 91.0), NOW)
    assert not is_reporting(school("1", "东区", 1, 1, True, None), NOW)


def test_the_rate_weighs_cameras_over_reporting_schools_and_the_share_counts_all_schools() -> None:
    schools = [
        school("1", "东区", 9, 10, True, 5.0),
        school("2", "东区", 1, 10, False, 5.0),
        school("3", "西区", 100, 100, True, 500.0),  # silent: out of the rate, not compliant
        school("4", "西区", 0, 0, False, None),
    ]
    assert networking_rate(schools, NOW).rate == 0.5
    assert compliant_share(schools, NOW).rate == 0.25
    table = city_table(schools, NOW, {"networking_rate": 0.8, "compliant_share": 0.8})
    assert (table["schools"], table["reporting"]) == (4, 2)
    west = next(d for d in table["by_district"] if d["district"] == "西区")
    assert west == {"district": "西区", "schools": 2, "reporting": 0, "networking_rate": None, "compliant_share": 0.0}


def test_camera_counts_read_either_form_of_the_report() -> None:
    listed = {
        "networking_rate": 0.75,
        "cameras": [{"state": "online"}] * 3 + [{"state": "offline"}, {"state": "maintenance"}],
    }
    assert camera_counts(listed) == (3, 4)
    counted = {"networking_rate": 0.5, "cameras": {"total": 5, "maintenance": 1}}
    assert camera_counts(counted) == (2, 4)
    assert camera_counts({"networking_rate": None, "cameras": []}) == (0, 0)
    assert camera_counts({"networking_rate": "x", "cameras": "junk"}) == (0, 0)
