"""The owner's inbox at /inbox: sign-in by emailed link, a cookie session, the JSON API
the page calls (api.py), its live socket (live.py) and the page itself (page.py)."""
