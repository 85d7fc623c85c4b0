"""Web Push: notifications on a phone or a desktop without email or an open page.

A browser subscribed with the Push API gives an endpoint at its vendor's push service
and two keys; the relay POSTs each notification there, encrypted for that device
(RFC 8291), signed as this installation (VAPID, RFC 8292), and the push service wakes
the device's service worker, which shows it. Owners are told of visitor messages on
their devices; visitors, optionally, of owner replies they have not read.

- vapid.py: the installation's key pair (kept in the database, one for every relay)
  and the `Authorization` header that proves a push comes from it.
- endpoints.py: an endpoint is a URL given by a browser, so a URL anyone can make us
  POST to: only public https addresses (checked when subscribing and when sending).
- sender.py: encrypts and sends one push, and says what came of it (delivered, gone,
  retry, refused) for the delivery queue to act on.

The rows (installation_secrets, push_subscriptions) are in relay/store/push.py. Nothing
here is imported until push is used: cryptography is not needed to print `porch --help`.
"""
