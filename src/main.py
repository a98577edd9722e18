#!/usr/bin/env python3
"""The hook entrypoint (charmcraft.yaml charm-entrypoint): dispatch runs this file for every hook.

It imports the charm rather than being it: Python compiles the file it runs as a script on every
start, and reads an imported module's cached bytecode, so charm.py's flow costs no compile per hook.
"""

import logging
import os

import ops

from charm import LXDClusterCharm

if __name__ == "__main__":  # pragma: nocover
    # each log line is a juju-log round trip to the agent: the framework's own DEBUG lines (ops logs them
    # on the root logger: up and running, storage, the event's name) and the snap library's go to Juju
    # only under `juju debug-code`/`debug-hooks` (JUJU_DEBUG). The charm's own loggers keep DEBUG.
    if not os.environ.get("JUJU_DEBUG"):
        logging.getLogger().addFilter(lambda record: record.levelno > logging.DEBUG)
        logging.getLogger("charmlibs").setLevel(logging.INFO)
    ops.main(LXDClusterCharm)
