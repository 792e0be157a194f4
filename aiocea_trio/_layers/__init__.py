"""The client's layers, outermost first, the way httpx layers ``send``:

``BinanceClient.request`` -> `orders.ExactlyOnce` (orders placed or cancelled once) ->
`retry.Retrying` (bounded retries of GETs) -> `session.Session` (limits learned, clock
synced, one re-sync on -1021) -> `gate.RateGate` (request weight and order budget) ->
`wire.Attempt` (sign, send within the deadline, decode).

Each layer is a small object with ``async __call__(call)`` over the next one, so each can
be tested alone with a fake inner layer. `call.Call` is the request they pass down, built
by the client from a registry `Endpoint` (``client.call``) or by `routing.Router` from a
method and a path (``client.request``).
"""
