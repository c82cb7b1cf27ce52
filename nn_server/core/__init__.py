"""The bottom layer: what every other layer may use and that uses none of them — the
configuration read from the environment, the domain errors' kinds, atomic files, host
names and addresses, and failure reasons without paths. Nothing here loads NumPy, MXNet or
Sanic."""
