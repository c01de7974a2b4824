"""tests/integration/groups_client.py: placeholder while being written (issue 6)."""
