"""Writes held until a replica has them (Redis' WAIT), so that a failover does not lose a turn the
platform was already told is recorded.

Redis replicates asynchronously: a master that dies right after answering a write may take it with it,
and its promoted replica then has neither the turn nor, often, the call it belonged to. With
CALLMEMORY_REDIS_WAIT_REPLICAS set, every hot-path round trip ends with WAIT on the connection that
wrote, so the event is answered only once that many replicas have acknowledged the writes. A replica
that does not answer within CALLMEMORY_REDIS_WAIT_TIMEOUT_S does not stop the call (a master with no
replica left, just after a failover, would otherwise refuse every write): the write goes on as it would
without WAIT, and the shortfall is logged when it begins and when it ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final

log = logging.getLogger(__name__)

WAIT: Final = "WAIT"


@dataclass(slots=True)
class ReplicaWait:
    replicas: int
    timeout_s: float
    _short: set[str] = field(default_factory=set, init=False)  # the masters last short of replicas

    @property
    def command(self) -> tuple[str, int, int]:
        # WAIT's timeout is in milliseconds, and 0 would wait for ever.
        return (WAIT, self.replicas, max(1, round(self.timeout_s * 1000)))

    def acknowledged(self, replicas: int, master: str = "") -> None:
        """Note how many replicas acknowledged a round trip's writes on `master` (a cluster's node)."""
        short = replicas < self.replicas
        if short == (master in self._short):
            return
        where = f" on {master}" if master else ""
        if short:
            self._short.add(master)
            log.warning(
                "Redis writes%s go on without %d replica(s) acknowledging them within %.2f s (%d did): a "
                "failover now may lose the latest turns",
                where,
                self.replicas,
                self.timeout_s,
                replicas,
            )
        else:
            self._short.discard(master)
            log.info("Redis writes%s are acknowledged by %d replica(s) again", where, self.replicas)
