#!/bin/sh
# The add-on's entry: /data/options.json (+ the Supervisor's MQTT broker) → /data/kamstrup.toml,
# then the daemon with its dashboard on the ingress port. Bad options: `addon-config` logs one
# line per problem and exits 2, so the add-on stops with the reason in its log.
set -e
kamstrup addon-config --options /data/options.json --output /data/kamstrup.toml
exec kamstrup -v run --config /data/kamstrup.toml
