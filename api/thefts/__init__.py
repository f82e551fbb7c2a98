"""Thefts (report, confirm with a case number, recover) and watches ("alert me if it moves")."""
