"""Email: notifications to owners out, their replies in."""
